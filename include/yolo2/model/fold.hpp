// Batch norm folded into the convolutions (inference): what FusedYoloV2 runs and the ONNX export
// writes by default.
#pragma once

#include <vector>

#include "yolo2/model/onednn_plan.hpp"

namespace yolo2::model {

class YoloV2Impl;

// One FoldedConv per convolution of the network, in the order of model.convs(): weight
// gamma / sqrt(var + eps) * W, bias beta - mean * gamma / sqrt(var + eps) (a convolution without
// batch norm keeps its weight and bias). Copies: later training does not change them.
std::vector<FoldedConv> fold_batch_norms(YoloV2Impl& model);

}  // namespace yolo2::model
