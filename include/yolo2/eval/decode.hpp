// From raw region outputs to detections (yolov2-reference.md §2.1): sigmoid centres plus the cell
// offset, exp(w, h) times the anchors, score = objectness x class probability, boxes mapped back to
// the original image through the eval transform and clipped to it, then per-class NMS.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "yolo2/data/augment.hpp"
#include "yolo2/eval/voc_ap.hpp"

namespace yolo2::eval {

// Decoded predictions, N = H * W * A ordered (y * W + x) * A + a (OpenCV's region-layer order).
struct RegionDecoded {
  at::Tensor boxes;        // [B, N, 4] cx, cy, w, h normalised to the network input
  at::Tensor objectness;   // [B, N] sigmoid(t_o)
  at::Tensor class_probs;  // [B, N, C] softmax over class logits
};

// raw [B, A*(5+C), H, W]; anchors (w, h) pairs in grid cells.
RegionDecoded decode_region(const at::Tensor& raw, const std::vector<double>& anchors, int num_classes);

struct DetectOptions {
  float score_threshold = 0.005f;  // on objectness x class probability
  float nms_threshold = 0.45f;     // per-class
  int max_detections = 100;        // per image, highest scores kept
};

// Detections of one image of a decoded batch, in original-image pixel coordinates (darknet's
// convention: continuous coordinates equal to 0-based pixel corners), clipped to the image.
// `transform` maps the original image to the network input (what the loader used); `input` is the
// network input side. Detection::image is set to `image_index`.
// Decoded tensors on a GPU take detect_image_on_device.
std::vector<Detection> detect_image(const RegionDecoded& decoded, int64_t b, const data::Affine& transform, int input_w,
                                    int input_h, int image_w, int image_h, int image_index,
                                    const DetectOptions& options);

// detect_image where the decoded tensors are: the candidates, their mapping to image pixels and
// the per-class NMS (ops::batched_nms_on_device) run as tensor ops on that device, and only the
// kept detections come to the host. The same detections as detect_image, bit for bit (the same
// float and double arithmetic); runs on any device.
std::vector<Detection> detect_image_on_device(const RegionDecoded& decoded, int64_t b, const data::Affine& transform,
                                              int input_w, int input_h, int image_w, int image_h, int image_index,
                                              const DetectOptions& options);

}  // namespace yolo2::eval
