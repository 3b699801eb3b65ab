// The network as plain data for the ONNX writer (src/interop/onnx_graph.cpp), which builds the model
// with the ONNX library's own protobuf classes, checks it with ONNX's checker and shape inference and
// returns its bytes. Kept free of LibTorch types: the interop library is compiled without LibTorch's
// headers (whose wheels carry another protobuf) and with ONNX's definitions (ONNX_ML, ONNX_NAMESPACE).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace yolo2::interop {

// The opset the export targets (onnx_graph.cpp says why).
constexpr int kOnnxOpset = 11;

struct OnnxConv {
  int64_t out = 0, in = 0, size = 1;
  int stride = 1, pad = 0;
  bool leaky = true;          // leaky ReLU 0.1 after it, else linear
  std::vector<float> weight;  // [out, in, size, size]
  std::vector<float> bias;    // [out]; empty when a batch norm follows (its beta is the shift)
  std::vector<float> bn_scale, bn_bias, bn_mean, bn_var;  // a kept batch norm (empty: folded or none)
  float bn_eps = 1e-5f;
};

struct OnnxLayer {
  enum class Type { Conv, MaxPool, Route, Reorg, AvgPool };
  Type type = Type::Conv;
  OnnxConv conv;            // Type::Conv
  std::vector<int> inputs;  // Type::Route: absolute indices of the concatenated layers
  int in_c = 0, in_h = 0, in_w = 0, out_c = 0, out_h = 0, out_w = 0;
};

// The region decode (yolov2-reference.md §2.1) and optionally ONNX's NonMaxSuppression in the graph.
struct OnnxDecode {
  std::vector<double> anchors;  // w, h pairs in grid cells
  int num_classes = 0;
  bool nms = false;
  float score_threshold = 0.25f, iou_threshold = 0.45f;
};

struct OnnxNetwork {
  std::vector<OnnxLayer> layers;
  int channels = 3, height = 0, width = 0;  // the fixed input size (the batch is dynamic)
  std::optional<OnnxDecode> decode;
  std::vector<std::pair<std::string, std::string>> metadata;  // metadata_props
  std::string producer_version;
  std::string graph_name = "yolo2";
};

struct OnnxResult {
  std::string bytes;                 // the serialized ModelProto
  int nodes = 0;                     // nodes in the graph
  std::vector<std::string> outputs;  // "name [dims]" per graph output, after shape inference
};

// Builds, checks (onnx::checker::check_model) and shape-infers (strict) the model. Throws
// std::runtime_error with ONNX's message when either refuses it.
OnnxResult build_onnx(const OnnxNetwork& net);

}  // namespace yolo2::interop
