// Every layer type of a NetworkSpec in one table: its name in the layer table, its darknet cfg
// section and keys, its shape rule (infer_shapes), how LibTorch runs it (the module's and the fused
// network's forward) and whether the oneDNN inference plan builds it. Adding a layer type (darknet's
// [shortcut] or [upsample], say) is a LayerSpec::Type value and a row here; a type the plan does not
// build makes the fused network run on LibTorch's ops.
#pragma once

#include <ATen/core/Tensor.h>

#include <ostream>
#include <vector>

#include "yolo2/model/yolov2.hpp"

namespace yolo2::model {

struct LayerKind {
  LayerSpec::Type type;
  const char* name;     // LayerInfo::type ("conv", "max", ...)
  const char* section;  // darknet's cfg section ("convolutional", ...)
  // Fills r's type-specific fields and its output shape from its input shape (r.in_*) and the rows
  // before it (a route's inputs); throws yolo2::Error naming the layer when the spec is inconsistent.
  void (*shape)(const LayerSpec& l, const std::vector<LayerInfo>& rows, LayerInfo& r);
  // x [B, C, H, W] -> the layer's output; `saved` holds earlier layers' outputs (routes). Null for a
  // convolution, which the caller runs with its own weights.
  at::Tensor (*run)(const LayerSpec& l, const at::Tensor& x, const std::vector<at::Tensor>& saved);
  // The section's keys, after its [section] line (layer `index`, for relative references).
  void (*cfg_keys)(std::ostream& os, const LayerSpec& l, int index);
  bool planned;  // the oneDNN plan (onednn_plan.cpp) builds it
};

// The row of `type`.
const LayerKind& layer_kind(LayerSpec::Type type);

// Whether the oneDNN plan builds every layer of `spec`.
bool planned_by_onednn(const NetworkSpec& spec);

}  // namespace yolo2::model
