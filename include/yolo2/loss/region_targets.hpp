// Target assignment of darknet's region loss (src/region_layer.c; yolov2-reference.md §2.2): which
// prediction is responsible for each ground truth and what it is trained toward. A pure function of
// the loader's targets and the grid, computed on the host (the targets live there) and moved to the
// device once.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace yolo2::loss {

struct TargetOptions {
  std::vector<double> anchors;  // (w, h) pairs in grid cells
  int num_classes = 20;
  double coord_scale = 1;
  bool small_box_weight = true;  // coordinate weight coord_scale * (2 - w h) instead of coord_scale
  int max_boxes = 30;            // ground truths used per image (the first ones)
};

// Flat prediction index: ((b * A + anchor) * H + j) * W + i, the order of a [B, A, H, W] tensor.
struct RegionTargets {
  // One row per responsible prediction: the cell and anchor of a ground truth's centre and shape; a
  // later ground truth on the same (cell, anchor) replaces an earlier one, as in darknet. Rows in
  // order of first assignment.
  at::Tensor flat;    // [R] int64
  at::Tensor labels;  // [R] int64
  at::Tensor coords;  // [R, 4] float: tx, ty, tw, th (ops::encode_box)
  at::Tensor weight;  // [R] float: the coordinate weight
  at::Tensor boxes;   // [R, 4] float: the ground truth, normalised cx, cy, w, h
  // Every ground truth in darknet's loop order, overwritten or not (the diagnostics count each).
  at::Tensor all_flat;    // [G] int64
  at::Tensor all_labels;  // [G] int64
  at::Tensor all_boxes;   // [G, 4] float cx, cy, w, h
  // Per image, the ground truths for the no-object test (best IoU of a prediction with them):
  at::Tensor image_boxes;  // [B, M', 4] float cx, cy, w, h, M' = max(1, min(M, max_boxes))
  at::Tensor image_valid;  // [B, M'] bool

  // The same tensors on `device` (from the host to a GPU: to_packed).
  RegionTargets to(const c10::Device& device) const;
  // The same tensors on `device` in two transfers, the integer ones and the float ones, each packed
  // into one buffer (pinned for a GPU) and cut back there.
  RegionTargets to_packed(const c10::Device& device) const;
};

// boxes [B, M, 4] x1, y1, x2, y2 normalised to the input; labels [B, M] int64; counts [B] int64
// (valid boxes per image), on any device; boxes without width or height are skipped. Throws when a
// label is outside [0, num_classes). Returns CPU tensors.
RegionTargets assign_targets(const at::Tensor& boxes, const at::Tensor& labels, const at::Tensor& counts,
                             int64_t grid_h, int64_t grid_w, const TargetOptions& options);

}  // namespace yolo2::loss
