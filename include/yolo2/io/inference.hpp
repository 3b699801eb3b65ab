// One way to get a trained network ready for inference, used by `eval`, `detect` and `export`.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "yolo2/config.hpp"
#include "yolo2/model/yolov2.hpp"

namespace yolo2::io {

struct InferenceSource {
  std::string checkpoint;       // a yolo2 checkpoint, or
  std::string darknet_weights;  // darknet .weights for `config`'s network (needs `config`)
  // Data and evaluation settings. Default: the checkpoint's stored config. The network (model.*)
  // always comes from the checkpoint, and the classes must match it.
  std::optional<Config> config;
  // `key=value` applied to the checkpoint's stored config when `config` is not given; model.* and
  // data.classes cannot be overridden (the weights fix them).
  std::vector<std::string> overrides;
  bool to_device = true;  // set up the runtime (threads, device) and move the network to runtime.device
  bool detector = true;   // refuse a classifier (model.head: classifier): eval and detect need a detector
};

struct InferenceModel {
  Config config;
  model::YoloV2 model{nullptr};  // in evaluation mode
  c10::Device device{c10::kCPU};
  uint64_t seen = 0;  // images the network was trained on (a checkpoint's state; darknet's header)
};

// Throws yolo2::Error naming the file or key on a missing, corrupt or mismatching source.
InferenceModel load_for_inference(const InferenceSource& source);

}  // namespace yolo2::io
