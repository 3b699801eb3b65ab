// The darknet .weights layout, checked without LibTorch (yolov2-reference.md §3): the header (both
// versions), and where each convolution's floats start in the body. load_darknet_weights
// (yolo2/io/darknet.hpp) checks a whole file with it before any tensor is written; the fuzz build,
// which has no LibTorch, fuzzes it directly (tests/fuzz, target `darknet_weights`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace yolo2::io {

struct DarknetHeader {
  int32_t major = 0, minor = 2, revision = 0;
  uint64_t seen = 0;         // images seen in training (32-bit in v0.1 files, 64-bit since v0.2)
  int header_bytes() const;  // 16 or 20, by darknet's reader rule
};

// One convolution of the network, in cfg order: its layer index, the floats it reads (biases or BN
// beta, [BN scales, rolling mean, rolling variance], weights) and how an error names it.
struct WeightsConv {
  std::size_t layer = 0;
  int64_t floats = 0;
  std::string what;
};

// Where the floats of each convolution a file fills start, counted in floats from the body's start.
struct WeightsStep {
  std::size_t layer = 0;
  int64_t offset = 0;
};

struct WeightsLayout {
  DarknetHeader header;
  std::size_t header_bytes = 0;
  std::vector<WeightsStep> steps;  // the convolutions filled from the file (all, or a prefix's)
  int conv_layers_total = 0;
  int64_t floats_read = 0;
};

// Checks `bytes`, a .weights file named `path`, against the convolutions `convs`: the header, a
// whole number of floats, exactly the network's floats (allow_prefix: or a prefix of them ending
// at a layer boundary, as darknet19_448.conv.23), and every float read finite. A yolo2::Error names
// the file and, where the floats run out, the layer, the floats expected and found.
WeightsLayout check_darknet_weights(const std::string& bytes, const std::string& path,
                                    const std::vector<WeightsConv>& convs, bool allow_prefix);

}  // namespace yolo2::io
