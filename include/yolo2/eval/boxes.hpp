// Box utilities on continuous x1, y1, x2, y2 boxes and non-maximum suppression.
// Continuous means no VOC '+1': area = (x2 - x1) * (y2 - y1), as in torchvision's ops/boxes.py;
// the '+1' IoU of the VOC metric is eval::voc_iou (voc_ap.hpp) and is not used here.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace yolo2::eval {

// Area of one xyxy box, 0 when it is empty or inverted.
float box_area(const float* box /*[4] x1 y1 x2 y2*/);

// IoU of two xyxy boxes, computed in float exactly like torchvision's CPU nms kernel
// (inter / (area_a + area_b - inter)). Returns 0 when the union is not positive (two empty
// boxes), where torchvision would produce NaN; both mean "never suppresses".
float box_iou(const float* a /*[4]*/, const float* b /*[4]*/);

// Greedy NMS (torchvision.ops.nms semantics). boxes [n, 4] xyxy, scores [n], row-major.
// Returns the indices of the kept boxes in descending score order; equal scores keep their
// input order (stable). A box is suppressed when its IoU with a kept, higher-ranked box is
// strictly greater than iou_threshold. NaN scores rank last.
std::vector<int64_t> nms(const float* boxes, const float* scores, int64_t n, float iou_threshold);

// Per-class NMS (torchvision.ops.batched_nms semantics): boxes of different labels never
// suppress each other. Same output order and tie rule as nms(). labels [n], any int64 values.
std::vector<int64_t> batched_nms(const float* boxes, const float* scores, const int64_t* labels,
                                 int64_t n, float iou_threshold);

// Tensor front ends: any device and floating dtype (copied to contiguous float32 on the CPU),
// labels any integer dtype. boxes [N, 4] xyxy, scores [N], labels [N]. Returns int64 [K] kept
// indices on the CPU, in descending score order. Throws yolo2::Error on shape mismatch.
at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);
at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& labels,
                       double iou_threshold);

// Pairwise IoU matrix with ATen ops (differentiable; the loss uses it):
// boxes1 [N, 4], boxes2 [M, 4] xyxy -> [N, M]. Empty unions give 0.
at::Tensor box_iou(const at::Tensor& boxes1, const at::Tensor& boxes2);

// Centre-size (cx, cy, w, h) <-> corners (x1, y1, x2, y2), last dimension of size 4: [..., 4].
at::Tensor cxcywh_to_xyxy(const at::Tensor& boxes);
at::Tensor xyxy_to_cxcywh(const at::Tensor& boxes);

}  // namespace yolo2::eval
