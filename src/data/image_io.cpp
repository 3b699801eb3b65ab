#include "yolo2/data/image_io.hpp"

#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

// libjpeg's C API (libjpeg-turbo on Debian); jpeglib.h needs stdio's FILE and size_t first.
extern "C" {
#include <jerror.h>
#include <jpeglib.h>
}
#include <zlib.h>

#include "yolo2/error.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::data {
namespace {

std::optional<std::string> read_all(const std::string& path, std::string& bytes) {
  try {
    bytes = util::read_file(path);
  } catch (const Error& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

// Unsigned 32-bit words of an image file's bytes, big-endian (PNG) and little-endian (BMP).
uint32_t byte_at(const std::string& b, std::size_t i) { return static_cast<unsigned char>(b[i]); }
uint32_t be32(const std::string& b, std::size_t i) {
  return (byte_at(b, i) << 24) | (byte_at(b, i + 1) << 16) | (byte_at(b, i + 2) << 8) | byte_at(b, i + 3);
}
uint32_t le32(const std::string& b, std::size_t i) {
  return byte_at(b, i) | (byte_at(b, i + 1) << 8) | (byte_at(b, i + 2) << 16) | (byte_at(b, i + 3) << 24);
}
// A BMP's width and height from its BITMAPINFOHEADER (at least 26 bytes; a negative height means
// stored top-down).
std::pair<uint32_t, uint32_t> bmp_size(const std::string& b) {
  const auto h = static_cast<int32_t>(le32(b, 22));
  return {le32(b, 18), static_cast<uint32_t>(h < 0 ? -static_cast<int64_t>(h) : h)};
}

// The EXIF Orientation of a JPEG (tag 0x0112 of IFD0 in its APP1 "Exif" segment), or 1 (as stored)
// when it has none. Only the markers before the image data are read; a malformed segment ends the
// search (the decoder judges the rest).
int jpeg_exif_orientation(const std::string& b) {
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

bool is_jpeg(const std::string& b) {
  return b.size() >= 2 && static_cast<unsigned char>(b[0]) == 0xFF && static_cast<unsigned char>(b[1]) == 0xD8;
}

// Decoded images are limited in size so that a damaged or hostile header (a few bytes claiming
// 60,000 x 60,000 pixels) cannot make yolo2 allocate gigabytes: 100 megapixels (300 MB decoded) is
// beyond any camera photo a detector trains on.
constexpr uint64_t kMaxPixels = 100'000'000;
// OpenCV's own limit on a side (CV_IO_MAX_IMAGE_WIDTH and _HEIGHT, 2^20): past it cv::imdecode throws
// from validateInputImageSize instead of decoding, e.g. for a damaged BMP header of 54 x 1,048,616.
constexpr uint64_t kMaxSide = uint64_t{1} << 20;

std::optional<std::string> check_pixels(const std::string& path, uint64_t width, uint64_t height) {
  if (width == 0 || height == 0 || width > kMaxSide || height > kMaxSide || width * height > kMaxPixels)
    return path + ": the image header says " + std::to_string(width) + " x " + std::to_string(height) +
           " pixels (yolo2 reads images of 1 to " + std::to_string(kMaxPixels / 1'000'000) + " megapixels, at most " +
           std::to_string(kMaxSide) + " pixels a side)";
  return std::nullopt;
}

// A PNG's chunks up to IEND: each one's length within the file, and each critical chunk's CRC-32
// (IHDR, PLTE, IDAT, IEND: the ones the pixels come from). libpng would refuse a critical chunk
// with a bad CRC as well, but its reason goes to stderr without the file's name; a damaged
// ancillary chunk (text, colour metadata) libpng only warns about and skips, and so does yolo2.
std::optional<std::string> check_png_chunks(const std::string& path, const std::string& b) {
  for (std::size_t pos = 8; pos + 12 <= b.size();) {
    std::string type = b.substr(pos + 4, 4);
    for (char& c : type)
      if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) c = '?';
    const uint32_t length = be32(b, pos);
    if (length > b.size() - pos - 12)
      return path + ": truncated PNG (chunk " + type + " at byte " + std::to_string(pos) + " declares " +
             std::to_string(length) + " bytes, more than the file holds; the file was cut short or is damaged)";
    const bool critical = (byte_at(b, pos + 4) & 0x20) == 0;  // an upper-case first letter
    if (critical) {
      const uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(b.data() + pos + 4), length + 4);
      if (crc != be32(b, pos + 8 + length))
        return path + ": damaged PNG (chunk " + type + " at byte " + std::to_string(pos) +
               " fails its CRC check: bytes of the file were changed)";
    }
    if (type == "IEND") return std::nullopt;
    pos += 12 + length;
  }
  return path + ": truncated PNG (no IEND chunk; the file was cut short)";
}

// What is wrong with an image's bytes, judged by its signature.
std::optional<std::string> check_bytes(const std::string& path, const std::string& b) {
  if (b.empty()) return path + ": empty file (0 bytes)";
  const auto u = [&](std::size_t i) { return static_cast<unsigned char>(b[i]); };
  if (is_jpeg(b)) {
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
    if (b.size() < 24) return path + ": truncated PNG (no header chunk)";
    if (auto bad = check_png_chunks(path, b)) return bad;
    return check_pixels(path, be32(b, 16), be32(b, 20));  // IHDR: width, height
  }
  if (b.size() >= 26 && u(0) == 'B' && u(1) == 'M') {
    const auto [width, height] = bmp_size(b);
    return check_pixels(path, width, height);
  }
  return path + ": not a JPEG, PNG or BMP image (by its first bytes)";
}

// libjpeg's error manager, extended: a fatal error jumps back to decode_jpeg; a warning (libjpeg goes
// on decoding, with the damaged blocks grey or smeared) is kept with its text instead of printed.
struct JpegErrors {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char fatal[JMSG_LENGTH_MAX];
  char damage[JMSG_LENGTH_MAX];  // the first warning that means damaged pixels
  int damaged = 0;
  uint64_t width = 0, height = 0;  // from the header
};

extern "C" void jpeg_fatal(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegErrors*>(c->err);
  (*c->err->format_message)(c, e->fatal);
  std::longjmp(e->jump, 1);
}

extern "C" void jpeg_message(j_common_ptr c, int level) {
  if (level >= 0) return;  // trace messages
  // Metadata oddities that leave the pixels intact; every other warning is damaged image data
  // ("Corrupt JPEG data: ...", "Premature end of JPEG file", a bad Huffman code, ...).
  const int code = c->err->msg_code;
  if (code == JWRN_ADOBE_XFORM || code == JWRN_JFIF_MAJOR || code == JWRN_NOT_SEQUENTIAL || code == JWRN_BOGUS_ICC)
    return;
  auto* e = reinterpret_cast<JpegErrors*>(c->err);
  if (e->damaged++ == 0) (*c->err->format_message)(c, e->damage);
}

// The decode proper: only plain C objects live in this frame (libjpeg's errors longjmp out of it).
// `out` is the caller's. Returns false (fatal error) with errors.fatal set.
bool decode_jpeg_into(const unsigned char* data, std::size_t size, JpegErrors& errors, cv::Mat& out, bool& cmyk) {
  jpeg_decompress_struct info;
  info.err = jpeg_std_error(&errors.mgr);
  errors.mgr.error_exit = jpeg_fatal;
  errors.mgr.emit_message = jpeg_message;
  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&info);
    return false;
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, data, static_cast<unsigned long>(size));
  jpeg_read_header(&info, TRUE);
  errors.width = info.image_width;
  errors.height = info.image_height;
  if (static_cast<uint64_t>(info.image_width) * info.image_height > kMaxPixels) {  // decode_jpeg names it
    jpeg_destroy_decompress(&info);
    return false;
  }
  // OpenCV's JPEG reader for IMREAD_COLOR: BGR straight from the decoder (grayscale expanded); CMYK
  // and YCCK decoded as CMYK here (the pixels checked), converted by OpenCV's own reader after.
  cmyk = info.num_components == 4;
#ifdef JCS_EXTENSIONS
  info.out_color_space = cmyk ? JCS_CMYK : JCS_EXT_BGR;
#else
  info.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
#endif
  jpeg_start_decompress(&info);
  out.create(static_cast<int>(info.output_height), static_cast<int>(info.output_width), CV_8UC(info.output_components));
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = out.ptr<unsigned char>(static_cast<int>(info.output_scanline));
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return true;
}

// A JPEG as 8-bit BGR, every decoder warning about damaged data an error naming the file.
cv::Mat decode_jpeg(const std::string& path, const std::string& bytes) {
  JpegErrors errors{};
  cv::Mat out;
  bool cmyk = false;
  if (!decode_jpeg_into(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), errors, out, cmyk))
    throw Error(errors.fatal[0] != 0 ? path + ": cannot decode JPEG (libjpeg: " + errors.fatal + ")"
                                     : check_pixels(path, errors.width, errors.height).value_or(path));
  if (errors.damaged > 0)
    throw Error(path + ": corrupt JPEG data (libjpeg: " + errors.damage + (errors.damaged > 1 ? ", and more" : "") +
                "): parts of the image would decode as grey or smeared blocks");
  if (cmyk)
    return cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data())),
                        cv::IMREAD_COLOR);
#ifndef JCS_EXTENSIONS
  cv::cvtColor(out, out, cv::COLOR_RGB2BGR);
#endif
  return out;
}

}  // namespace

std::optional<std::string> check_image_file(const std::string& path) {
  std::string bytes;
  if (auto problem = read_all(path, bytes)) return problem;
  return check_bytes(path, bytes);
}

cv::Mat decode_image(const std::string& path, const std::string& bytes) {
  if (std::optional<std::string> problem = check_bytes(path, bytes)) throw Error(*problem);
  if (is_jpeg(bytes)) return decode_jpeg(path, bytes);
  cv::Mat image;
  try {
    image = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data())),
                         cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {  // OpenCV 4.6 throws past imdecode for some headers it misreads
    throw Error(path + ": cannot decode image (OpenCV: " + e.err + ")");
  }
  if (image.empty()) throw Error(path + ": cannot decode image (not a JPEG, PNG or BMP OpenCV can read)");
  return image;
}

cv::Size image_size(const std::string& path) {
  std::string b;
  if (std::optional<std::string> problem = read_all(path, b)) throw Error(*problem);
  const auto u = [&](std::size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(b[i])); };
  const auto size = [&](uint32_t w, uint32_t h) {
    if (auto bad = check_pixels(path, w, h)) throw Error(*bad);
    return cv::Size(static_cast<int>(w), static_cast<int>(h));
  };
  if (is_jpeg(b)) {
    // The segments before the first frame header (SOF0-SOF15 but DHT C4, JPG C8, DAC CC).
    for (std::size_t pos = 2; pos + 9 <= b.size() && u(pos) == 0xFF;) {
      const uint32_t marker = u(pos + 1);
      if (marker == 0xFF) {  // fill byte
        ++pos;
        continue;
      }
      if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC)
        return size((u(pos + 7) << 8) | u(pos + 8), (u(pos + 5) << 8) | u(pos + 6));
      if (marker == 0xDA || marker == 0xD9) break;
      pos += 2 + ((u(pos + 2) << 8) | u(pos + 3));
    }
    throw Error(path + ": JPEG without a frame header (no image size before the image data)");
  }
  if (b.size() >= 24 && b.compare(1, 3, "PNG") == 0) return size(be32(b, 16), be32(b, 20));
  if (b.size() >= 26 && b[0] == 'B' && b[1] == 'M') {
    const auto [width, height] = bmp_size(b);
    return size(width, height);
  }
  throw Error(path + ": not a JPEG, PNG or BMP image (by its first bytes)");
}

cv::Mat read_image_file(const std::string& path) {
  std::string bytes;
  if (std::optional<std::string> problem = read_all(path, bytes)) throw Error(*problem);
  return decode_image(path, bytes);
}

}  // namespace yolo2::data
