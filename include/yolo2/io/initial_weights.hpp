// train.init_weights: the weights a fresh run starts from.
#pragma once

#include <string>

#include "yolo2/model/yolov2.hpp"

namespace yolo2::io {

// Loads `path` into `model`: a yolo2 checkpoint (every parameter's shape must match) or darknet
// .weights, full or a prefix such as darknet19_448.conv.23. Empty path: nothing. Errors name the file.
void load_initial_weights(model::YoloV2Impl& model, const std::string& path);

}  // namespace yolo2::io
