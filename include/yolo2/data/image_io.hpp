// Reading images with problems named: a missing, empty, truncated or undecodable image is an error
// that names the file, never a silently grey or skipped picture.
#pragma once

#include <opencv2/core.hpp>

#include <optional>
#include <string>

namespace yolo2::data {

// Cheap checks on the bytes, without decoding: the file is readable and not empty, a JPEG ends
// with its end-of-image marker (a truncated download does not), a PNG with its IEND chunk. Returns
// what is wrong ("<path>: ..."), or nothing.
std::optional<std::string> check_image_file(const std::string& path);

// The image as 8-bit BGR after check_image_file and a full decode (JPEGs by libjpeg, whose warnings
// about damaged data are errors; the pixels are OpenCV's imdecode's). Throws yolo2::Error naming the
// file and the problem.
cv::Mat read_image_file(const std::string& path);

// The width and height an image's header gives (JPEG's frame header, PNG's IHDR, BMP's info
// header), without decoding it. Throws yolo2::Error naming the file when there is none.
cv::Size image_size(const std::string& path);

// read_image_file on bytes already read from `path` (the name is for messages).
cv::Mat decode_image(const std::string& path, const std::string& bytes);

}  // namespace yolo2::data
