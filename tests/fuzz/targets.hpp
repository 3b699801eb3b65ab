// The fuzz targets (targets.cpp), shared by the libFuzzer build and the corpus replay.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace yolo2::fuzz {

struct Target {
  const char* name;  // also the corpus folder: tests/fuzz/corpus/<name>
  void (*run)(const uint8_t* data, std::size_t size);
};

const std::vector<Target>& targets();
const Target* find_target(const std::string& name);
// Runs one input; true when it was accepted, false when refused with yolo2::Error. Any other
// exception propagates (a finding).
bool run_one(const Target& target, const uint8_t* data, std::size_t size);

}  // namespace yolo2::fuzz
