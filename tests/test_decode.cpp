// Decoding region outputs into detections in original-image pixels.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "yolo2/data/augment.hpp"
#include "yolo2/data/dataset.hpp"
#include "yolo2/eval/decode.hpp"
#include "yolo2/eval/evaluator.hpp"

using namespace yolo2;

namespace {

double logit(double p) { return std::log(p / (1 - p)); }

// One strong prediction: anchor `a` of cell (i, j) on an h x w grid with 2 anchors and 3 classes.
at::Tensor one_prediction(int h, int w, int a, int i, int j, double sx, double sy, double tw, double th, double obj,
                          int cls) {
  const int e = 5 + 3;
  at::Tensor raw = at::full({1, 2 * e, h, w}, -20.0f);  // everything else: objectness ~0
  auto set = [&](int k, double v) { raw[0][a * e + k][j][i] = static_cast<float>(v); };
  set(0, logit(sx));
  set(1, logit(sy));
  set(2, tw);
  set(3, th);
  set(4, logit(obj));
  for (int c = 0; c < 3; ++c) set(5 + c, c == cls ? 10.0 : 0.0);
  return raw;
}

}  // namespace

TEST(Decode, HandSetOutputGivesExpectedBoxForResize) {
  // 4x4 grid (input 128), anchors (1,1) and (2,3) cells. Anchor 1 of cell (i=2, j=1):
  // centre ((2 + .5) / 4, (1 + .25) / 4) = (.625, .3125) of the input, size exp(0) * 2 / 4 = .5 wide,
  // exp(ln .5) * 3 / 4 = .375 high.
  const std::vector<double> anchors{1, 1, 2, 3};
  const at::Tensor raw = one_prediction(4, 4, 1, 2, 1, 0.5, 0.25, 0.0, std::log(0.5), 0.9, 2);
  const auto d = eval::decode_region(raw, anchors, 3);
  // Original image 256 x 200, plainly resized to 128 x 128.
  const data::Affine tr = data::eval_affine(256, 200, 128, data::EvalTransform::Resize);
  eval::DetectOptions o;
  o.score_threshold = 0.5;
  const auto dets = eval::detect_image(d, 0, tr, 128, 128, 256, 200, 7, o);
  ASSERT_EQ(dets.size(), 1u);
  const double p2 = std::exp(10.0) / (std::exp(10.0) + 2);
  EXPECT_NEAR(dets[0].score, 0.9 * p2, 1e-5);
  EXPECT_EQ(dets[0].label, 2);
  EXPECT_EQ(dets[0].image, 7);
  EXPECT_NEAR(dets[0].box.x1, (0.625 - 0.25) * 256, 1e-3);
  EXPECT_NEAR(dets[0].box.x2, (0.625 + 0.25) * 256, 1e-3);
  EXPECT_NEAR(dets[0].box.y1, (0.3125 - 0.1875) * 200, 1e-3);
  EXPECT_NEAR(dets[0].box.y2, (0.3125 + 0.1875) * 200, 1e-3);
}

TEST(Decode, HandSetOutputGivesExpectedBoxForLetterboxAndClips) {
  const std::vector<double> anchors{1, 1, 2, 3};
  // A wide image 500 x 250 letterboxed into 128: scale 128/500, new height 64, offset (0, 32).
  const data::Affine tr = data::eval_affine(500, 250, 128, data::EvalTransform::Letterbox);
  ASSERT_NEAR(tr.ay, 64.0 / 250, 1e-12);
  ASSERT_NEAR(tr.by, 32.0, 1e-12);
  // Anchor 0 of cell (1, 1): centre (1.5/4, 1.5/4) * 128 = (48, 48) input px, size 32 x 32 px.
  const at::Tensor raw = one_prediction(4, 4, 0, 1, 1, 0.5, 0.5, 0.0, 0.0, 0.8, 0);
  eval::DetectOptions o;
  o.score_threshold = 0.5;
  auto dets = eval::detect_image(eval::decode_region(raw, anchors, 3), 0, tr, 128, 128, 500, 250, 0, o);
  ASSERT_EQ(dets.size(), 1u);
  const double s = 500.0 / 128;  // input px -> original px
  EXPECT_NEAR(dets[0].box.x1, 32 * s, 1e-3);
  EXPECT_NEAR(dets[0].box.x2, 64 * s, 1e-3);
  EXPECT_NEAR(dets[0].box.y1, (32 - 32) * s, 1e-3);
  EXPECT_NEAR(dets[0].box.y2, (64 - 32) * s, 1e-3);
  // A box reaching into the gray band and beyond the image is clipped to the image.
  const at::Tensor big = one_prediction(4, 4, 1, 3, 0, 0.9, 0.1, std::log(2.0), std::log(1.0), 0.8, 1);
  dets = eval::detect_image(eval::decode_region(big, anchors, 3), 0, tr, 128, 128, 500, 250, 0, o);
  ASSERT_EQ(dets.size(), 1u);
  EXPECT_FLOAT_EQ(dets[0].box.y1, 0.0f);
  EXPECT_FLOAT_EQ(dets[0].box.x2, 499.0f);
}

TEST(Decode, ThresholdsNmsAndCapApply) {
  const std::vector<double> anchors{1, 1, 2, 3};
  // Two anchors of one cell predicting nearly the same box and class: NMS keeps the stronger.
  at::Tensor raw = one_prediction(4, 4, 0, 1, 1, 0.5, 0.5, std::log(2.0), std::log(3.0), 0.9, 1);
  const at::Tensor other = one_prediction(4, 4, 1, 1, 1, 0.5, 0.5, 0.0, 0.0, 0.6, 1);
  raw.narrow(1, 8, 8).copy_(other.narrow(1, 8, 8));
  eval::DetectOptions o;
  o.score_threshold = 0.3f;
  o.nms_threshold = 0.45f;
  const data::Affine id{1, 0, 1, 0};
  auto dets = eval::detect_image(eval::decode_region(raw, anchors, 3), 0, id, 128, 128, 128, 128, 0, o);
  ASSERT_EQ(dets.size(), 1u);
  EXPECT_GT(dets[0].score, 0.85f);
  o.nms_threshold = 1.0;  // nothing suppressed
  dets = eval::detect_image(eval::decode_region(raw, anchors, 3), 0, id, 128, 128, 128, 128, 0, o);
  EXPECT_EQ(dets.size(), 2u);
  o.max_detections = 1;
  dets = eval::detect_image(eval::decode_region(raw, anchors, 3), 0, id, 128, 128, 128, 128, 0, o);
  ASSERT_EQ(dets.size(), 1u);
  EXPECT_GT(dets[0].score, 0.85f);
  o.score_threshold = 0.95f;  // above both
  EXPECT_TRUE(eval::detect_image(eval::decode_region(raw, anchors, 3), 0, id, 128, 128, 128, 128, 0, o).empty());
}

// Decoded random network outputs (8 x 8 cells, 5 anchors), large enough for hundreds of candidates.
eval::RegionDecoded random_outputs(int64_t batch, int classes, uint64_t seed) {
  const std::vector<double> anchors{0.4, 0.4, 0.8, 0.8, 1.2, 1.2, 1.7, 1.7, 2.4, 2.4};
  const at::Tensor raw = at::randn({batch, 5 * (5 + classes), 8, 8}, at::detail::createCPUGenerator(seed)) * 2.5;
  return eval::decode_region(raw, anchors, classes);
}

// A low threshold (0.005) on odd trials, 0.05 on even ones, and the cap.
eval::DetectOptions trial_options(int trial, int max_detections) {
  eval::DetectOptions o;
  o.score_threshold = trial % 2 ? 0.005f : 0.05f;
  o.max_detections = max_detections;
  return o;
}

// The same detections, bit for bit: image index, class, score and corners, in the same order.
void expect_same_detections(const std::vector<eval::Detection>& got, const std::vector<eval::Detection>& want,
                            const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t k = 0; k < want.size(); ++k) {
    EXPECT_EQ(got[k].image, want[k].image) << what << ", detection " << k;
    EXPECT_EQ(got[k].label, want[k].label) << what << ", detection " << k;
    EXPECT_EQ(got[k].score, want[k].score) << what << ", detection " << k;
    EXPECT_EQ(got[k].box.x1, want[k].box.x1) << what << ", detection " << k;
    EXPECT_EQ(got[k].box.y1, want[k].box.y1) << what << ", detection " << k;
    EXPECT_EQ(got[k].box.x2, want[k].box.x2) << what << ", detection " << k;
    EXPECT_EQ(got[k].box.y2, want[k].box.y2) << what << ", detection " << k;
  }
}

// detect_batch (evaluation's GPU path, run here on CPU tensors): every image of a batch at once,
// each with its own transform, size and index, in any order and with rows left out, gives what
// detect_image gives image by image, bit for bit.
TEST(Decode, BatchEqualsTheHostPathImageByImage) {
  const std::vector<double> anchors{0.4, 0.4, 0.8, 0.8, 1.2, 1.2, 1.7, 1.7, 2.4, 2.4};
  const std::vector<eval::BatchImage> images{{3, {0.8125, 3.3, 0.8125, 17.9}, 500, 333, 11},
                                             {0, {0.5, 0, 0.75, 0}, 512, 341, 2},
                                             {2, {1.0, 0, 1.0, 0}, 256, 256, 7},
                                             {1, {-0.64, 256, 0.64, 40.5}, 400, 300, 3}};
  for (int trial = 0; trial < 4; ++trial) {
    const auto d = random_outputs(5, 4, static_cast<uint64_t>(70 + trial));
    const eval::DetectOptions o = trial_options(trial, trial == 3 ? 20 : 100);
    const auto batch = eval::detect_batch(d, images, 256, 256, o);
    ASSERT_EQ(batch.size(), images.size());
    for (std::size_t j = 0; j < images.size(); ++j) {
      const auto& im = images[j];
      const auto host = eval::detect_image(d, im.b, im.transform, 256, 256, im.image_w, im.image_h, im.image_index, o);
      ASSERT_GT(host.size(), 5u);
      expect_same_detections(batch[j], host, "trial " + std::to_string(trial) + " image " + std::to_string(j));
    }
  }
  // No candidate at all: every image gets an empty list.
  eval::DetectOptions none;
  none.score_threshold = 2.0f;
  const auto empty =
      eval::detect_batch(eval::decode_region(at::zeros({5, 45, 4, 4}), anchors, 4), images, 128, 128, none);
  ASSERT_EQ(empty.size(), images.size());
  for (const auto& e : empty) EXPECT_TRUE(e.empty());
}

// The device path of detect_image (the GPU's, run here on the CPU tensors) gives the same
// detections, bit for bit: random network outputs, a letterbox-like transform with fractional
// offsets, a low threshold (hundreds of candidates) and the cap.
TEST(Decode, OnDeviceEqualsTheHostPath) {
  const data::Affine tr{0.8125, 3.3, 0.8125, 17.9};
  for (int trial = 0; trial < 6; ++trial) {
    const auto d = random_outputs(2, 6, static_cast<uint64_t>(40 + trial));
    const eval::DetectOptions o = trial_options(trial, trial % 3 == 2 ? 25 : 100);
    for (int64_t b = 0; b < 2; ++b) {
      const auto host = eval::detect_image(d, b, tr, 256, 256, 500, 333, 4, o);
      const auto dev = eval::detect_image_on_device(d, b, tr, 256, 256, 500, 333, 4, o);
      ASSERT_GT(host.size(), 10u);
      expect_same_detections(dev, host, "trial " + std::to_string(trial));
    }
  }
}
