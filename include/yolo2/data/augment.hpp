// Image transforms for training (darknet-style jitter, flip, HSV distortion) and evaluation
// (letterbox or plain resize). yolov2-reference.md §2.6.
//
// Box convention: boxes here are continuous coordinates equal to the 0-based VOC pixel corners,
// as darknet's voc_label.py makes them (width = x2 - x1, no +1); normalised boxes divide them by
// the image size. Every geometric transform is an axis-aligned affine map x' = ax * x + bx,
// applied to the image in one cv::warpAffine and to the boxes with the same numbers.
#pragma once

#include <ATen/core/Tensor.h>
#include <opencv2/core.hpp>

#include <vector>

#include "yolo2/data/choices.hpp"
#include "yolo2/util/rng.hpp"

namespace yolo2::data {

// x' = ax * x + bx, y' = ay * y + by (continuous pixel coordinates). ax < 0 means flipped.
struct Affine {
  double ax = 1, bx = 0, ay = 1, by = 0;
  // Inverse map: from network-input coordinates back to the original image.
  double inv_x(double x) const { return (x - bx) / ax; }
  double inv_y(double y) const { return (y - by) / ay; }
};

// A box with its class, in the coordinates of the image it belongs to.
struct LabeledBox {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  int label = 0;
};

// The random draws of one training augmentation (exposed so tests can check them).
struct AugmentDraw {
  Affine affine;  // original image -> output
  bool flipped = false;
  double dhue = 0, dsat = 1, dexp = 1;
};

// darknet's rand_scale: uniform in [1, s], inverted with probability 1/2.
double rand_scale(util::Rng& rng, double s);

// Draws the geometric and colour parameters for an image of ow x oh to an out x out input.
AugmentDraw draw_augment(int ow, int oh, int out, const AugmentOptions& cfg, util::Rng& rng);

// The evaluation map (letterbox like darknet's letterbox_image, or plain resize).
Affine eval_affine(int ow, int oh, int out, EvalTransform transform);

// Renders `image` (8-bit BGR) through `affine` into an out x out 8-bit BGR image. Pixels that come
// from outside the source replicate its border (crop jitter) or are gray 127 (letterbox).
cv::Mat warp_image(const cv::Mat& image, const Affine& affine, int out, bool replicate_border);

// In-place HSV distortion of an 8-bit BGR image: hue shift dhue (on [0, 1]), saturation and value
// scales dsat and dexp. Darknet: PJ darknet's distort_image in float (S and V unclamped, hue
// wrapped, RGB clamped at the end), rounded back to 8 bits. AlexeyAB: its OpenCV 8-bit HSV path.
void distort_hsv(cv::Mat& bgr, double dhue, double dsat, double dexp, HsvMode mode = HsvMode::Darknet);

// distort_hsv on a batch, as tensor ops on the batch's device (a GPU's, in training): rgb
// [B, H, W, 3] uint8 RGB, draws [B, 3] (dhue, dsat, dexp per image; float or double) -> [B, H, W, 3]
// uint8. Darknet: the same float operations in the same order as the host's per-pixel loop, and
// the same rounding back to 8 bits: equal to distort_hsv image by image, bit for bit. AlexeyAB:
// OpenCV's 8-bit BGR->HSV (its integer tables, exact), the channel scaling and hue shift with
// OpenCV's rounding and saturation (exact), and its vectorised HSV->BGR (float, truncated back to 8
// bits); OpenCV rounds instead of truncating for the pixels its vector loop leaves over (a row's
// last few), so there the two can differ by one level.
at::Tensor distort_hsv_batch(const at::Tensor& rgb, const at::Tensor& draws, HsvMode mode = HsvMode::Darknet);

// Maps boxes through `affine`, clips them to [0, out], and drops those narrower or lower than
// min_size * out (darknet: 0.001) without disturbing the others' order. stop_at_dropped: a dropped
// box also drops every later one (PJ darknet before 2018-01-16, data.augment.box_holes).
std::vector<LabeledBox> transform_boxes(const std::vector<LabeledBox>& boxes, const Affine& affine, int out,
                                        double min_size, bool stop_at_dropped = false);

// Full training augmentation of one image: draw, warp, distort (unless `colour` is false: the batch's
// device does it, distort_hsv_batch), transform boxes.
struct Augmented {
  cv::Mat image;                  // out x out 8-bit BGR
  std::vector<LabeledBox> boxes;  // pixel coordinates of `image`
  AugmentDraw draw;
};
Augmented augment_train(const cv::Mat& image, const std::vector<LabeledBox>& boxes, int out, const AugmentOptions& cfg,
                        util::Rng& rng, bool colour = true);

}  // namespace yolo2::data
