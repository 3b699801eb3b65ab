// Atomic file writes on a background thread, so that a training loop hands over a checkpoint's bytes
// (its snapshot, taken on the loop's thread) and goes on while the disk write and fsync happen.
// One write at a time, in the order given: a write waits for the one before it, so no two writes of
// a file ever overlap, and each is write_file_atomic's (a crash mid-write leaves the previous file).
#pragma once

#include <exception>
#include <string>
#include <thread>

namespace yolo2::util {

class BackgroundWriter {
 public:
  BackgroundWriter() = default;
  ~BackgroundWriter();  // waits for the write in flight; a failure nobody collected is logged
  BackgroundWriter(const BackgroundWriter&) = delete;
  BackgroundWriter& operator=(const BackgroundWriter&) = delete;

  // Waits for the previous write (rethrowing its failure), then writes `bytes` to `path` atomically
  // in the background.
  void write(std::string path, std::string bytes);
  // Returns once every write handed over so far is on disk; rethrows the failure of the last one
  // (yolo2::Error naming the path and the reason).
  void wait();
  bool busy() const { return thread_.joinable(); }

 private:
  std::thread thread_;
  std::exception_ptr error_;
};

}  // namespace yolo2::util
