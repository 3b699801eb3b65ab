#include "yolo2/data/image_io.hpp"

#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "yolo2/error.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::data {
namespace {

std::optional<std::string> read_all(const std::string& path, std::vector<char>& bytes) {
  try {
    const std::string content = util::read_file(path);
    bytes.assign(content.begin(), content.end());
  } catch (const Error& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

// The EXIF Orientation of a JPEG (tag 0x0112 of IFD0 in its APP1 "Exif" segment), or 1 (as stored)
// when it has none. Only the markers before the image data are read; a malformed segment ends the
// search (the decoder judges the rest).
int jpeg_exif_orientation(const std::vector<char>& b) {
  const auto u = [&](std::size_t i) { return static_cast<unsigned>(static_cast<unsigned char>(b[i])); };
  std::size_t pos = 2;
  while (pos + 4 <= b.size() && u(pos) == 0xFF) {
    const unsigned marker = u(pos + 1);
    if (marker == 0xDA || marker == 0xD9) break;  // start of scan, end of image: no more metadata
    const std::size_t len = (u(pos + 2) << 8) | u(pos + 3);
    if (len < 2 || pos + 2 + len > b.size()) break;
    const std::size_t seg = pos + 4, end = pos + 2 + len;
    if (marker == 0xE1 && end - seg >= 14 &&
        std::equal(b.begin() + static_cast<long>(seg), b.begin() + static_cast<long>(seg + 6), "Exif\0\0")) {
      const std::size_t tiff = seg + 6;
      const bool le = u(tiff) == 'I';  // "II": little-endian, "MM": big-endian
      const auto rd = [&](std::size_t at, int n) -> unsigned {
        if (at + static_cast<std::size_t>(n) > end) return 0;
        unsigned v = 0;
        for (int k = 0; k < n; ++k) v |= u(at + static_cast<std::size_t>(le ? k : n - 1 - k)) << (8 * k);
        return v;
      };
      const std::size_t ifd = tiff + rd(tiff + 4, 4);
      const unsigned entries = rd(ifd, 2);
      for (unsigned e = 0; e < entries && e < 512; ++e) {
        const std::size_t entry = ifd + 2 + 12 * static_cast<std::size_t>(e);
        if (entry + 12 > end) break;
        if (rd(entry, 2) == 0x0112) return static_cast<int>(rd(entry + 8, 2));
      }
      return 1;
    }
    pos = end;
  }
  return 1;
}

// What is wrong with an image's bytes, judged by its signature.
std::optional<std::string> check_bytes(const std::string& path, const std::vector<char>& b) {
  if (b.empty()) return path + ": empty file (0 bytes)";
  const auto u = [&](std::size_t i) { return static_cast<unsigned char>(b[i]); };
  if (b.size() >= 2 && u(0) == 0xFF && u(1) == 0xD8) {
    // A camera's rotation flag: darknet's OpenCV loader (and a plain imread) turns the pixels, while
    // the annotation tools and the XML's <size> may follow either frame; refused rather than guessed.
    if (const int o = jpeg_exif_orientation(b); o > 1 && o <= 8)
      return path + ": EXIF orientation " + std::to_string(o) +
             " (the camera's rotation flag): yolo2 does not guess whether the annotations follow the stored or "
             "the rotated pixels; store the image upright with orientation 1 (e.g. `exiftool -Orientation=1 -n` "
             "after rotating it, or `mogrify -auto-orient`) and check its boxes";
    // JPEG: ends with FF D9 (EOI), maybe padded
    std::size_t end = b.size();
    while (end > 2 && u(end - 1) == 0x00) --end;
    for (std::size_t i = end; i >= 2 && i + 64 >= end; --i)
      if (u(i - 2) == 0xFF && u(i - 1) == 0xD9) return std::nullopt;
    return path + ": truncated JPEG (no end-of-image marker; the file was cut short)";
  }
  const unsigned char png[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (b.size() >= 8 &&
      std::equal(png, png + 8, b.begin(), [](unsigned char p, char c) { return p == static_cast<unsigned char>(c); })) {
    const std::string tail(b.end() - static_cast<long>(std::min<std::size_t>(b.size(), 12)), b.end());
    if (tail.find("IEND") == std::string::npos) return path + ": truncated PNG (no IEND chunk; the file was cut short)";
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> check_image_file(const std::string& path) {
  std::vector<char> bytes;
  if (auto problem = read_all(path, bytes)) return problem;
  return check_bytes(path, bytes);
}

cv::Mat read_image_file(const std::string& path) {
  std::vector<char> bytes;
  std::optional<std::string> problem = read_all(path, bytes);
  if (!problem) problem = check_bytes(path, bytes);
  if (problem) throw Error(*problem);
  cv::Mat image = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, bytes.data()), cv::IMREAD_COLOR);
  if (image.empty()) throw Error(path + ": cannot decode image (not a JPEG, PNG or BMP OpenCV can read)");
  return image;
}

}  // namespace yolo2::data
