// The YOLOv2 region box coder (yolov2-reference.md §2.1-§2.2): raw region outputs to boxes, and a
// ground truth to the cell, anchor and targets (tx, ty, tw, th) darknet trains toward. The loss,
// the evaluator and the detector all decode through it.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <vector>

namespace yolo2::ops {

// The parts of a region output raw [B, A*(5+C), H, W], darknet's entry order per anchor:
// x, y, w, h, objectness, C class logits.
struct RegionParts {
  at::Tensor x, y;    // [B, A, H, W] sigmoid(t_x), sigmoid(t_y): the centre inside its cell
  at::Tensor w, h;    // [B, A, H, W] t_w, t_h (raw)
  at::Tensor obj;     // [B, A, H, W] sigmoid(t_o)
  at::Tensor logits;  // [B, A, C, H, W] class logits (raw)
};

// Splits (and activates) a region output; `raw` keeps its gradient. Throws when the channel count
// is not num_anchors * (5 + num_classes).
RegionParts split_region(const at::Tensor& raw, int64_t num_anchors, int64_t num_classes);

// The anchors as a [2A] float tensor on `device` (on a GPU: one copy per process, made once).
at::Tensor anchor_table(const std::vector<double>& anchors, const c10::Device& device);

// Boxes of every prediction, [B, A, H, W, 4] normalised to the input: cx = (i + x) / W,
// cy = (j + y) / H, w = exp(t_w) anchor_w / W, h = exp(t_h) anchor_h / H. anchors: (w, h) pairs in
// grid cells. Differentiable where the parts are.
at::Tensor decode_boxes(const RegionParts& parts, const std::vector<double>& anchors);

// One ground truth encoded for the grid: the cell holding its centre, the anchor of best shape IoU
// (darknet's bias_match; the first on ties) and darknet's targets for that prediction.
struct EncodedBox {
  int64_t i = 0, j = 0;  // cell column and row
  int64_t anchor = 0;
  float tx = 0, ty = 0;  // centre offset inside the cell, the target of sigmoid(t_x), sigmoid(t_y)
  float tw = 0, th = 0;  // log(size / anchor), the target of t_w, t_h
};

// cx, cy, w, h: the box normalised to the input (w, h > 0).
EncodedBox encode_box(float cx, float cy, float w, float h, int64_t grid_w, int64_t grid_h,
                      const std::vector<double>& anchors);

}  // namespace yolo2::ops
