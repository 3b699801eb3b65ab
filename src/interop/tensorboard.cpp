#include "yolo2/interop/tensorboard.hpp"

#include <array>
#include <stdexcept>

#include "tensorboard_event.pb.h"

namespace yolo2::interop {
namespace {

std::array<uint32_t, 256> crc32c_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reflected Castagnoli
    t[i] = c;
  }
  return t;
}

uint32_t mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

std::string frame(const yolo2::tensorboard::Event& event) {
  std::string data;
  if (!event.SerializeToString(&data)) throw std::runtime_error("tensorboard: cannot serialize an event");
  std::string header(8, '\0');
  const uint64_t n = data.size();
  for (int i = 0; i < 8; ++i) header[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  const auto le32 = [](uint32_t v) {
    std::string s(4, '\0');
    for (int i = 0; i < 4; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
    return s;
  };
  return header + le32(masked_crc32c(header)) + data + le32(masked_crc32c(data));
}

yolo2::tensorboard::Event event_at(double wall_time, int64_t step) {
  yolo2::tensorboard::Event e;
  e.set_wall_time(wall_time);
  e.set_step(step);
  return e;
}

}  // namespace

uint32_t crc32c(const std::string& data) {
  static const std::array<uint32_t, 256> table = crc32c_table();
  uint32_t crc = 0xFFFFFFFFu;
  for (const char ch : data) crc = table[(crc ^ static_cast<unsigned char>(ch)) & 0xff] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const std::string& data) { return mask(crc32c(data)); }

std::string tb_file_version_record(double wall_time) {
  yolo2::tensorboard::Event e = event_at(wall_time, 0);
  e.set_file_version("brain.Event:2");
  return frame(e);
}

std::string tb_session_start_record(double wall_time, int64_t step, const std::string& checkpoint) {
  yolo2::tensorboard::Event e = event_at(wall_time, step);
  yolo2::tensorboard::SessionLog& log = *e.mutable_session_log();
  log.set_status(yolo2::tensorboard::SessionLog::START);
  log.set_checkpoint_path(checkpoint);
  return frame(e);
}

std::string tb_scalar_record(double wall_time, int64_t step, const std::string& tag, float value) {
  yolo2::tensorboard::Event e = event_at(wall_time, step);
  yolo2::tensorboard::SummaryValue& v = *e.mutable_summary()->add_value();
  v.set_tag(tag);
  v.set_simple_value(value);
  return frame(e);
}

std::string tb_image_record(double wall_time, int64_t step, const std::string& tag, const std::string& png, int height,
                            int width) {
  yolo2::tensorboard::Event e = event_at(wall_time, step);
  yolo2::tensorboard::SummaryValue& v = *e.mutable_summary()->add_value();
  v.set_tag(tag);
  yolo2::tensorboard::SummaryImage& im = *v.mutable_image();
  im.set_height(height);
  im.set_width(width);
  im.set_colorspace(3);
  im.set_encoded_image_string(png);
  return frame(e);
}

}  // namespace yolo2::interop
