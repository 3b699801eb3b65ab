// Box operations shared by the loss, the evaluator and the detector: every form of IoU the program
// uses, the box conversions and NMS, each implemented once.
//
// Two conventions:
// - continuous (torchvision ops/boxes.py, darknet's box_iou): area = (x2 - x1) * (y2 - y1);
// - VOC pixel-inclusive (the devkit, py-faster-rcnn voc_eval.py): area = (x2 - x1 + 1) * (y2 - y1 + 1),
//   used only to score detections against VOC ground truths (voc_iou).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace yolo2::ops {

// A box in pixel corners, 0-based (x1, y1) to (x2, y2).
struct Box {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
};

// ---- scalar forms (the CPU kernels) ------------------------------------------------------------

// Area of one xyxy box, 0 when it is empty or inverted.
float box_area(const float* box /*[4] x1 y1 x2 y2*/);

// Continuous IoU of two xyxy boxes, in float exactly like torchvision's CPU nms kernel
// (inter / (area_a + area_b - inter)). Returns 0 when the union is not positive (two empty
// boxes), where torchvision would produce NaN; both mean "never suppresses".
float box_iou(const float* a /*[4]*/, const float* b /*[4]*/);

// IoU of two boxes sharing their centre (darknet's anchor matching, bias_match: only the shapes
// count). Equal to box_iou of the two boxes centred on the origin.
float shape_iou(float w1, float h1, float w2, float h2);

// The VOC metric's IoU with the '+1' pixel convention, in float64 term for term as voc_eval.py
// computes it (a: the detection, b: one ground truth), so that ties at the threshold round the same.
double voc_iou(const Box& a, const Box& b);

// ---- NMS -----------------------------------------------------------------------------------------

// Greedy NMS (torchvision.ops.nms semantics). boxes [n, 4] xyxy, scores [n], row-major.
// Returns the indices of the kept boxes in descending score order; equal scores keep their
// input order (stable). A box is suppressed when its IoU with a kept, higher-ranked box is
// strictly greater than iou_threshold. NaN scores rank last.
std::vector<int64_t> nms(const float* boxes, const float* scores, int64_t n, float iou_threshold);

// Per-class NMS (torchvision.ops.batched_nms semantics): boxes of different labels never
// suppress each other. Same output order and tie rule as nms(). labels [n], any int64 values.
std::vector<int64_t> batched_nms(const float* boxes, const float* scores, const int64_t* labels, int64_t n,
                                 float iou_threshold);

// Tensor front ends: any device and floating dtype (copied to contiguous float32 on the CPU),
// labels any integer dtype. boxes [N, 4] xyxy, scores [N], labels [N]. Returns int64 [K] kept
// indices on the CPU, in descending score order. Throws yolo2::Error on shape mismatch.
at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);
// Boxes on a GPU take batched_nms_on_device.
at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& labels,
                       double iou_threshold);

// batched_nms where the boxes are (a GPU during evaluation on CUDA): the rank order and each
// label's suppression matrix (IoU above the threshold) come from tensor ops on the boxes' device;
// only the greedy scan over the matrix runs on the host. For finite boxes the kept indices equal
// batched_nms's bit for bit: the same float IoU expression, the same rank order (descending score,
// NaN last, ties in input order). Returns int64 [K] on the CPU. Runs on any device (the tests
// compare it with batched_nms on the CPU).
at::Tensor batched_nms_on_device(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& labels,
                                 double iou_threshold);

// ---- tensor forms (ATen ops, any device, differentiable) ---------------------------------------

// Element-wise continuous IoU of xyxy boxes [..., 4] (broadcasting). Empty unions give 0.
at::Tensor elementwise_iou(const at::Tensor& a, const at::Tensor& b);
// The same on centre-size boxes (cx, cy, w, h) [..., 4]: darknet's box_iou, used by the region loss.
at::Tensor elementwise_iou_cxcywh(const at::Tensor& a, const at::Tensor& b);
// Pairwise IoU matrix: boxes1 [N, 4], boxes2 [M, 4] xyxy -> [N, M].
at::Tensor box_iou(const at::Tensor& boxes1, const at::Tensor& boxes2);

// Centre-size (cx, cy, w, h) <-> corners (x1, y1, x2, y2), last dimension of size 4: [..., 4].
at::Tensor cxcywh_to_xyxy(const at::Tensor& boxes);
at::Tensor xyxy_to_cxcywh(const at::Tensor& boxes);

}  // namespace yolo2::ops
