#include "yolo2/util/background_writer.hpp"

#include <spdlog/spdlog.h>

#include <utility>

#include "yolo2/util/atomic_file.hpp"

namespace yolo2::util {

BackgroundWriter::~BackgroundWriter() {
  try {
    wait();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
  }
}

void BackgroundWriter::write(std::string path, std::string bytes) {
  wait();
  thread_ = std::thread([this, path = std::move(path), bytes = std::move(bytes)] {
    try {
      write_file_atomic(path, bytes);
    } catch (...) {
      error_ = std::current_exception();  // read by wait(), after the join
    }
  });
}

void BackgroundWriter::wait() {
  if (thread_.joinable()) thread_.join();
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

}  // namespace yolo2::util
