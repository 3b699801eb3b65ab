// yolo2::Error: the one exception type the library throws for bad input (config, data, files).
// The message carries its context (file, line, key); main() prints it on one line and exits 1.
#pragma once

#include <stdexcept>
#include <string>

namespace yolo2 {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace yolo2
