// Inference of a YOLOv2 network straight through oneDNN (the library LibTorch's CPU convolutions
// already call), compiled once per input shape. What LibTorch's op-by-op forward cannot do on CPU:
// the activations stay in oneDNN's blocked layout from the first convolution to the last (no
// reorder between layers), the convolution weights are reordered once when the plan is built
// instead of on every call, and leaky ReLU runs as the convolution's post-op (no second pass over
// the activations). Built only when CMake finds oneDNN's headers (YOLO2_HAVE_ONEDNN).
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace yolo2::model {

struct NetworkSpec;

// A convolution with batch norm folded in (weight [O, I, k, k], bias [O]), as FusedYoloV2 holds it.
struct FoldedConv {
  at::Tensor weight, bias;
  int stride = 1, padding = 0;
  bool leaky = true;
};

// Whether this build has the oneDNN plan (else FusedYoloV2 always runs LibTorch ops).
bool onednn_available();
// The version of the oneDNN library the plan runs on ("2.6.3"), "" without it.
std::string onednn_plan_version();

class OneDnnPlan {
 public:
  // convs[conv_of_layer[i]] is layer i's convolution. Throws std::runtime_error (naming the layer)
  // when oneDNN has no implementation for a layer, or when built without oneDNN.
  OneDnnPlan(const NetworkSpec& spec, const std::vector<int>& conv_of_layer, const std::vector<FoldedConv>& convs,
             int64_t batch, int64_t height, int64_t width);
  ~OneDnnPlan();
  OneDnnPlan(const OneDnnPlan&) = delete;
  OneDnnPlan& operator=(const OneDnnPlan&) = delete;

  // x: float CPU [batch, channels, height, width] -> raw outputs [batch, A*(5+C), h/32, w/32]
  // (a new contiguous tensor). Not reentrant: one call at a time per plan.
  at::Tensor run(const at::Tensor& x);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace yolo2::model
