// `yolo2 bench`: measured speed of the pieces of training and evaluation, medians over repeats after
// warm-up, on runtime.device in runtime.precision (on a GPU: the training iteration, the forward at
// batch 1 and 64 and decode + NMS there; the loader and VOC scoring are the host's work anyway). The figures come back
// as a report: a terminal table, and JSON in a stable schema (docs/bench-schema.json, "yolo2.bench/1"): every figure
// has a fixed id, a value and a unit.
#pragma once

#include <string>
#include <vector>

#include "yolo2/config.hpp"

namespace yolo2::bench {

struct BenchOptions {
  int batches = 20;           // loader batches measured after warm-up
  int repeats = 5;            // timed repeats per measurement (the median is reported)
  bool loader = true;         // needs the config's training data
  bool opencv = true;         // OpenCV DNN on the exported network
  bool onnxruntime = true;    // ONNX Runtime (python3's onnxruntime, where importable) on the ONNX export
  bool train = true;          // the training iteration and its peak memory
  bool both_layouts = false;  // also the other memory format than runtime.channels_last
};

struct Measurement {
  std::string id;     // stable: e.g. "train_iteration", "forward_batch1"; the schema lists them
  std::string label;  // for people
  double value = 0;
  std::string unit;  // "images/s", "ms", "GFLOP/s", "MiB"
  std::string note;
};

struct BenchReport {
  std::string config;     // the config file
  std::string device;     // where it ran: "cpu", "cuda:0" (runtime.device)
  std::string precision;  // runtime.precision: the training iteration's and the GPU forward's
  int input_size = 0;
  double width = 1;
  int threads = 0;
  double gflop_per_image = 0;  // one forward pass
  std::vector<Measurement> results;

  const Measurement* find(const std::string& id) const;  // null when not measured
};

// Runs the measurements the options ask for (sets up the runtime from config.runtime first).
BenchReport run_bench(const Config& config, const BenchOptions& options);

// The terminal table.
std::string format_table(const BenchReport& report);
// {"schema": "yolo2.bench/1", "config", "device", "precision", "input_size", "width", "threads",
//  "gflop_per_image", "results": [{"id", "label", "value", "unit", "note"}...], "build": {...}}.
std::string to_json(const BenchReport& report);

// The ids a report may hold, in report order (the schema's enumeration).
const std::vector<std::string>& measurement_ids();

}  // namespace yolo2::bench
