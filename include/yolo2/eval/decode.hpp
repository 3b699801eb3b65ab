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
// Decoded tensors on a GPU take detect_batch's path.
std::vector<Detection> detect_image(const RegionDecoded& decoded, int64_t b, const data::Affine& transform, int input_w,
                                    int input_h, int image_w, int image_h, int image_index,
                                    const DetectOptions& options);

// One image of a decoded batch: its row b, the transform that made its network input, its size and
// the index its detections get.
struct BatchImage {
  int64_t b = 0;
  data::Affine transform;
  int image_w = 0, image_h = 0;
  int image_index = 0;
};

// detect_image for several images of a batch where the decoded tensors are (the GPU's path): the
// candidates above the threshold and their mapping to image pixels as tensor ops on that device, for
// all the images at once; then the candidates (image, class, score, box) come to the host in one
// transfer and each image's per-class NMS runs there. A constant number of host transfers per batch
// (two small copies in, the candidate count, the candidates out), not per image or class. The same
// detections as detect_image, bit for bit (the same float and double arithmetic; the same NMS on the
// same candidates); runs on any device. Result j is images[j]'s.
std::vector<std::vector<Detection>> detect_batch(const RegionDecoded& decoded, const std::vector<BatchImage>& images,
                                                 int input_w, int input_h, const DetectOptions& options);

// detect_batch for one image.
std::vector<Detection> detect_image_on_device(const RegionDecoded& decoded, int64_t b, const data::Affine& transform,
                                              int input_w, int input_h, int image_w, int image_h, int image_index,
                                              const DetectOptions& options);

}  // namespace yolo2::eval
