#include "yolo2/data/image_io.hpp"

#include <opencv2/imgcodecs.hpp>

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

// What is wrong with an image's bytes, judged by its signature.
std::optional<std::string> check_bytes(const std::string& path, const std::vector<char>& b) {
  if (b.empty()) return path + ": empty file (0 bytes)";
  const auto u = [&](std::size_t i) { return static_cast<unsigned char>(b[i]); };
  if (b.size() >= 2 && u(0) == 0xFF && u(1) == 0xD8) {  // JPEG: ends with FF D9 (EOI), maybe padded
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
