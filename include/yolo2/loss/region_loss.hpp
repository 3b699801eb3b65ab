// darknet's YOLOv2 region loss (src/region_layer.c; yolov2-reference.md §2.2-§2.3), term for term,
// with a pluggable class term: cross-entropy (darknet), softmax focal or sigmoid focal.
//
// The loss optimised is the one darknet's deltas imply, summed and divided by the batch size:
//   noobj: 1/2 noobject_scale sigma(t_o)^2 at predictions that are not responsible and whose best
//          IoU with every ground truth is <= thresh;
//   obj:   1/2 object_scale (target - sigma(t_o))^2 at responsible predictions, target = IoU of
//          the prediction with its ground truth (rescore) or 1;
//   coord: 1/2 coord_scale (2 - w h) [(sigma(t_x) - x^)^2 + (sigma(t_y) - y^)^2 + (t_w - w^)^2 +
//          (t_h - h^)^2] at responsible predictions;
//   class: class_scale * CE / focal over the class logits at responsible predictions;
//   warmup (while fewer than warmup_images have been seen): 1/2 warmup_scale [(sigma(t_x) - .5)^2 +
//          (sigma(t_y) - .5)^2 + t_w^2 + t_h^2] at every non-responsible prediction.
// One prediction is responsible per ground truth: the anchor of best shape-only IoU (ties: the
// first) in the cell holding the box centre; a later ground truth on the same (cell, anchor)
// replaces an earlier one, as in darknet.
#pragma once

#include <torch/types.h>

#include <vector>

#include "yolo2/loss/choices.hpp"
#include "yolo2/loss/region_targets.hpp"
#include "yolo2/loss/scalars.hpp"

namespace yolo2::loss {

struct RegionLossOptions {
  std::vector<double> anchors;  // (w, h) pairs in grid cells
  int num_classes = 20;
  ClassLoss classification = ClassLoss::CrossEntropy;
  double object_scale = 5, noobject_scale = 1, class_scale = 1, coord_scale = 1;
  double thresh = 0.6;
  bool rescore = true;
  bool small_box_weight = true;
  int64_t warmup_images = 12800;
  double warmup_scale = 0.01;
  int max_boxes = 30;   // ground truths used per image (the first ones)
  torch::Tensor alpha;  // [C] focal class weights (undefined: all ones)
  double sigmoid_alpha = -1;
  // Fill RegionLossResult's doubles (one copy of the figures to the host). The trainer turns it off
  // and accumulates RegionLossResult::scalars where they are, so that a GPU never waits for it.
  bool host_scalars = true;

  TargetOptions targets() const;  // the fields target assignment uses
};

// The class term at the responsible predictions: which loss, and its parameters at this step.
struct ClassTermOptions {
  ClassLoss kind = ClassLoss::CrossEntropy;
  double gamma = 0;           // focal and sigmoid focal: the schedule's gamma now (ignored for ce)
  torch::Tensor alpha;        // [C] per-class weights (undefined: all ones)
  double sigmoid_alpha = -1;  // sigmoid focal: torchvision's positive weight (< 0: off)
};

// logits [R, C], labels [R] int64 -> the summed class term (a scalar).
torch::Tensor class_term(const torch::Tensor& logits, const torch::Tensor& labels, const ClassTermOptions& options);

// Each term separately (already divided by the batch size) and darknet's diagnostics.
struct RegionLossResult {
  torch::Tensor total;  // scalar, differentiable
  // The doubles below (with RegionLossOptions::host_scalars; NaN without):
  double coord = 0, object = 0, noobject = 0, cls = 0, warmup = 0;
  // darknet's "Region Avg IOU / Class / Obj / No Obj / Avg Recall / count" (predictions before
  // the update); NaN-free: 0 when count is 0.
  double avg_iou = 0, avg_class = 0, avg_obj = 0, avg_noobj = 0, recall50 = 0, recall75 = 0;
  int64_t count = 0;  // ground truths (always: the targets are built on the host)
  // The same eleven figures as named values on the loss's device (region_loss_scalars(): the terms
  // coord, object, noobject, class, warmup; the diagnostics avg_iou, avg_class, avg_obj, avg_noobj,
  // recall50, recall75).
  NamedScalars scalars;
};

// The names of RegionLossResult::scalars and how they combine over micro-batches and ranks
// (metrics.csv's columns for a detector). warmup is not drawn in loss.png (zero after warmup_images).
const ScalarSpecs& region_loss_scalars();

// raw [B, A*(5+C), H, W]; boxes [B, M, 4] x1, y1, x2, y2 normalised to the input; labels [B, M]
// int64; counts [B] int64 (valid boxes per image) — the loader's Batch tensors (on any device).
// `seen`: images seen including this batch (darknet increments it before the forward pass).
// `gamma`: the current focal gamma (ignored for ce).
RegionLossResult region_loss(const torch::Tensor& raw, const torch::Tensor& boxes, const torch::Tensor& labels,
                             const torch::Tensor& counts, int64_t seen, double gamma, const RegionLossOptions& options);

// Inverse class frequency of `objects_per_class`, normalised to mean 1 over the classes (classes
// with no object get the largest weight of the others). For loss.focal.alpha = auto.
std::vector<double> inverse_frequency_alpha(const std::vector<int>& objects_per_class);

}  // namespace yolo2::loss
