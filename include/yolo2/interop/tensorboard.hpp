// TensorBoard's event records (what its SummaryWriter writes): each record is the serialized Event
// protobuf framed as TFRecord does, uint64 length (little-endian), the masked CRC-32C of those 8
// bytes, the data, the masked CRC-32C of the data. The protobuf messages are a subset of
// TensorBoard's event.proto and summary.proto with their field numbers (src/interop/tensorboard_event.proto).
#pragma once

#include <cstdint>
#include <string>

namespace yolo2::interop {

// CRC-32C (Castagnoli), and TFRecord's mask of it: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t crc32c(const std::string& data);
uint32_t masked_crc32c(const std::string& data);

// One framed record of an Event holding file_version "brain.Event:2" (the first record of a file).
std::string tb_file_version_record(double wall_time);
// One framed record of an Event holding SessionLog START at `step`: TensorBoard's loader drops the
// points of earlier files at `step` and after (a run restarted from a checkpoint).
std::string tb_session_start_record(double wall_time, int64_t step, const std::string& checkpoint);
// One framed record of an Event with one scalar (Summary.Value.simple_value) at `step`.
std::string tb_scalar_record(double wall_time, int64_t step, const std::string& tag, float value);
// One framed record of an Event with one image (Summary.Value.image: an encoded PNG, RGB).
std::string tb_image_record(double wall_time, int64_t step, const std::string& tag, const std::string& png, int height,
                            int width);

}  // namespace yolo2::interop
