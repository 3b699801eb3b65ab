// darknet model files in and out: .weights (both header versions, full or prefix) and .cfg.
// yolov2-reference.md §3.
#pragma once

#include <cstdint>
#include <string>

#include "yolo2/config.hpp"
#include "yolo2/io/darknet_weights.hpp"
#include "yolo2/model/yolov2.hpp"

namespace yolo2::io {

using model::NetworkSpec;
using model::YoloV2Impl;

struct WeightsLoad {
  DarknetHeader header;
  int conv_layers_loaded = 0;  // convolutions filled from the file
  int conv_layers_total = 0;
  int64_t floats_read = 0;
};

// Reads a darknet .weights file into `model`, layers in cfg order, each convolution as
// biases (BN beta), [BN scales, rolling mean, rolling variance], weights (out, in, kh, kw).
// allow_prefix: the file may end at a layer boundary before the last layer (darknet19_448.conv.23);
// the remaining layers keep their values. Otherwise the file must cover every layer exactly.
// The whole file is checked against the network before any tensor is written: a file that runs
// out inside a layer, is too short for a full load, or has bytes left over is a yolo2::Error saying
// how many floats were expected and found and at which layer they ran out.
WeightsLoad load_darknet_weights(YoloV2Impl& model, const std::string& path, bool allow_prefix);

// Writes a v0.2 .weights file (20-byte header, 64-bit seen) of the first `upto` layers (all when
// negative), atomically.
void save_darknet_weights(YoloV2Impl& model, const std::string& path, uint64_t seen, int upto = -1);

// The network as a darknet .cfg (with the config's training recipe in [net] and [region]).
std::string darknet_cfg(const NetworkSpec& spec, const Config& config);

// Writes PREFIX.cfg and PREFIX.weights.
void export_darknet(YoloV2Impl& model, const Config& config, const std::string& prefix, uint64_t seen);

// Floats a .weights body holds for the first `upto` layers (all when negative).
int64_t darknet_weight_floats(const NetworkSpec& spec, int upto = -1);

}  // namespace yolo2::io
