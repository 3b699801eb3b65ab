// Shared helpers for the test suite: temporary folders, small file utilities, shell commands.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <opencv2/core.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "yolo2/error.hpp"

namespace yolo2::testing {

// A fresh folder under the system temp dir, removed (with its content) on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "yolo2") {
    std::random_device rd;
    auto base = std::filesystem::temp_directory_path();
    for (int attempt = 0; attempt < 100; ++attempt) {
      path_ = base / (tag + "-" + std::to_string(rd()) + std::to_string(attempt));
      if (std::filesystem::create_directories(path_)) return;
    }
    throw std::runtime_error("TempDir: cannot create a temporary folder");
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The message of the yolo2::Error `fn` throws; fails the test if it throws nothing or another type.
template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const yolo2::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected yolo2::Error, got another exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "expected yolo2::Error, nothing was thrown";
  return {};
}

// Runs `command` through the shell; its exit status, or -1 when a signal ended it.
inline int run_status(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Pixels of `image` exactly equal to `colour` (plots draw in exact palette colours).
inline int count_pixels_of(const cv::Mat& image, const cv::Scalar& colour) {
  cv::Mat mask;
  cv::inRange(image, colour, colour, mask);
  return cv::countNonZero(mask);
}

}  // namespace yolo2::testing

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "'" << (text) << "' lacks '" << (part) << "'"
