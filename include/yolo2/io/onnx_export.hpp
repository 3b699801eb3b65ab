// `yolo2 export --format onnx`: a network as an ONNX model (opset 11, fixed input size, dynamic
// batch) checked by ONNX's checker and shape inference, written atomically. With `decode`, the
// region decode in the graph (boxes in input pixels clipped to a `window` input, objectness x class
// probability); with `nms` also ONNX's NonMaxSuppression. The metadata names everything a consumer
// needs: classes, anchors, input size and normalisation, letterbox or resize, thresholds, outputs.
#pragma once

#include <string>
#include <vector>

#include "yolo2/config.hpp"
#include "yolo2/model/yolov2.hpp"

namespace yolo2::io {

struct OnnxExportOptions {
  int size = 0;                   // input side (multiple of 32); 0: the config's data.input_size
  bool fold_bn = true;            // batch norm folded into the convolutions, else BatchNormalization nodes
  bool decode = false;            // outputs boxes [B, N, 4] and scores [B, N, C] instead of the raw map
  bool nms = false;               // also selected_indices [K, 3] from NonMaxSuppression (needs decode)
  float score_threshold = 0.25f;  // NMS's (eval.detect_thresh unless given)
  float iou_threshold = 0.45f;    // NMS's (eval.nms unless given)
};

struct OnnxExportSummary {
  int nodes = 0;
  int size = 0;
  std::vector<std::string> outputs;  // "name [dims]"
  std::size_t bytes = 0;
};

// Throws yolo2::Error naming the file or option on a refusal (a size that is not a multiple of 32,
// nms without decode, a classifier with decode, ONNX's checker).
OnnxExportSummary export_onnx(model::YoloV2Impl& model, const Config& config, const std::string& path,
                              const OnnxExportOptions& options);

}  // namespace yolo2::io
