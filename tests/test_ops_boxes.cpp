// Continuous IoU and NMS (torchvision.ops.nms / batched_nms semantics).
#include "yolo2/ops/boxes.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "yolo2/error.hpp"

namespace yolo2::ops {
namespace {

using Boxes = std::vector<float>;  // [n, 4] row-major xyxy

std::vector<int64_t> run_nms(const Boxes& boxes, const std::vector<float>& scores, float iou) {
  return nms(boxes.data(), scores.data(), static_cast<int64_t>(scores.size()), iou);
}

std::vector<int64_t> run_batched(const Boxes& boxes, const std::vector<float>& scores,
                                 const std::vector<int64_t>& labels, float iou) {
  return batched_nms(boxes.data(), scores.data(), labels.data(), static_cast<int64_t>(scores.size()), iou);
}

TEST(BoxIou, ContinuousAreasWithoutPlusOne) {
  const float a[4] = {0, 0, 10, 10}, b[4] = {5, 0, 15, 10}, far[4] = {20, 20, 30, 30};
  EXPECT_FLOAT_EQ(box_area(a), 100.f);
  EXPECT_FLOAT_EQ(box_iou(a, a), 1.f);
  EXPECT_FLOAT_EQ(box_iou(a, b), 50.f / 150.f);
  EXPECT_FLOAT_EQ(box_iou(a, far), 0.f);
  // Touching edges share no area (no '+1').
  const float touching[4] = {10, 0, 20, 10};
  EXPECT_FLOAT_EQ(box_iou(a, touching), 0.f);
}

TEST(BoxIou, EmptyAndInvertedBoxesHaveZeroAreaAndZeroIou) {
  const float point[4] = {3, 3, 3, 3}, inverted[4] = {10, 10, 0, 0};
  EXPECT_EQ(box_area(point), 0.f);
  EXPECT_EQ(box_area(inverted), 0.f);
  EXPECT_EQ(box_iou(point, point), 0.f);  // union 0: defined as 0, never suppresses
  const float a[4] = {0, 0, 10, 10};
  EXPECT_EQ(box_iou(a, inverted), 0.f);
}

TEST(Nms, SuppressesOverlapsAndReturnsKeptIndicesByDescendingScore) {
  const Boxes boxes = {0,  0,  10, 10,   // 0: score .8
                       1,  1,  11, 11,   // 1: score .9, IoU with 0 = 81 / 119 > .5
                       50, 50, 60, 60};  // 2: score .7, far away
  const std::vector<float> scores = {0.8f, 0.9f, 0.7f};
  EXPECT_EQ(run_nms(boxes, scores, 0.5f), (std::vector<int64_t>{1, 2}));
  // A looser threshold keeps everything, still sorted by score.
  EXPECT_EQ(run_nms(boxes, scores, 0.7f), (std::vector<int64_t>{1, 0, 2}));
}

TEST(Nms, SuppressionIsStrictlyGreaterThanTheThreshold) {
  const Boxes boxes = {0, 0, 4, 1, 0, 0, 2, 1};  // IoU = 2 / 4 = 0.5 exactly
  const std::vector<float> scores = {0.9f, 0.8f};
  ASSERT_EQ(box_iou(boxes.data(), boxes.data() + 4), 0.5f);
  EXPECT_EQ(run_nms(boxes, scores, 0.5f), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(run_nms(boxes, scores, 0.49f), (std::vector<int64_t>{0}));
}

TEST(Nms, OnlyKeptBoxesSuppress) {
  // 0 suppresses 1; 1 would suppress 2, but 1 is gone and 0 barely touches 2: 2 survives.
  const Boxes boxes = {0, 0, 10, 10, 4, 0, 14, 10, 8, 0, 18, 10};
  const std::vector<float> scores = {0.9f, 0.8f, 0.7f};
  EXPECT_EQ(run_nms(boxes, scores, 0.4f), (std::vector<int64_t>{0, 2}));
}

TEST(Nms, EmptyInputGivesEmptyOutput) {
  EXPECT_TRUE(nms(nullptr, nullptr, 0, 0.5f).empty());
  EXPECT_TRUE(batched_nms(nullptr, nullptr, nullptr, 0, 0.5f).empty());
  EXPECT_THROW(nms(nullptr, nullptr, -1, 0.5f), Error);
}

TEST(Nms, EqualScoresKeepInputOrderAndNanScoresRankLast) {
  const Boxes boxes = {0, 0, 1, 1, 10, 10, 11, 11, 20, 20, 21, 21, 30, 30, 31, 31};
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(run_nms(boxes, {0.5f, nan, 0.5f, 0.7f}, 0.5f), (std::vector<int64_t>{3, 0, 2, 1}));
  // Two identical boxes with equal scores: the first in input order is the one kept.
  const Boxes same = {0, 0, 5, 5, 0, 0, 5, 5};
  EXPECT_EQ(run_nms(same, {0.5f, 0.5f}, 0.5f), (std::vector<int64_t>{0}));
}

TEST(BatchedNms, ClassesDoNotSuppressEachOther) {
  const Boxes boxes = {0, 0, 10, 10, 0, 0, 10, 10, 0, 0, 10, 10, 1, 1, 10, 10};
  const std::vector<float> scores = {0.6f, 0.9f, 0.8f, 0.7f};
  const std::vector<int64_t> labels = {7, 3, 7, 3};
  // Label 3: 1 (.9) suppresses 3. Label 7: 2 (.8) suppresses 0. Output in global score order.
  EXPECT_EQ(run_batched(boxes, scores, labels, 0.5f), (std::vector<int64_t>{1, 2}));
  // All distinct labels: nothing is suppressed.
  EXPECT_EQ(run_batched(boxes, scores, {0, 1, 2, -5}, 0.5f), (std::vector<int64_t>{1, 2, 3, 0}));
  // One label: the same as plain NMS.
  EXPECT_EQ(run_batched(boxes, scores, {4, 4, 4, 4}, 0.5f), run_nms(boxes, scores, 0.5f));
}

// The definition, without the greedy loop's bookkeeping: in rank order, a box is kept when no
// already kept box of its label overlaps it by more than the threshold.
std::vector<int64_t> brute_force_nms(const Boxes& boxes, const std::vector<float>& scores,
                                     const std::vector<int64_t>& labels, float iou) {
  std::vector<int64_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
  std::vector<int64_t> kept;
  for (int64_t i : order) {
    bool keep = true;
    for (int64_t j : kept) {
      if (labels[j] == labels[i] && box_iou(&boxes[4 * j], &boxes[4 * i]) > iou) keep = false;
    }
    if (keep) kept.push_back(i);
  }
  return kept;
}

TEST(BatchedNms, MatchesBruteForceOnRandomBoxes) {
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 30; ++trial) {
    const int n = 1 + static_cast<int>(rng() % 400);
    const int num_labels = 1 + static_cast<int>(rng() % 5);
    std::uniform_real_distribution<float> pos(0.f, 100.f), size(1.f, 40.f);
    Boxes boxes;
    std::vector<float> scores;
    std::vector<int64_t> labels, same_label(static_cast<std::size_t>(n), 0);
    for (int i = 0; i < n; ++i) {
      const float x = pos(rng), y = pos(rng);
      boxes.insert(boxes.end(), {x, y, x + size(rng), y + size(rng)});
      scores.push_back(static_cast<float>(rng() % 50) / 50.f);  // coarse: many ties
      labels.push_back(static_cast<int64_t>(rng() % static_cast<unsigned>(num_labels)));
    }
    const float iou = 0.1f + 0.1f * static_cast<float>(trial % 7);
    EXPECT_EQ(run_batched(boxes, scores, labels, iou), brute_force_nms(boxes, scores, labels, iou))
        << "trial " << trial;
    EXPECT_EQ(run_nms(boxes, scores, iou), brute_force_nms(boxes, scores, same_label, iou)) << "trial " << trial;
  }
}

// The device form (the GPU's path, run here on the CPU) keeps exactly what batched_nms keeps:
// random boxes with many tied scores, many overlaps near the threshold, NaN and -inf scores.
TEST(BatchedNmsOnDevice, EqualsBatchedNmsBitForBit) {
  std::mt19937 rng(777);
  for (int trial = 0; trial < 40; ++trial) {
    const int n = static_cast<int>(rng() % 600);
    const int num_labels = 1 + static_cast<int>(rng() % 20);
    std::uniform_real_distribution<float> pos(0.f, 60.f), size(0.f, 50.f);
    Boxes boxes;
    std::vector<float> scores;
    std::vector<int64_t> labels;
    for (int i = 0; i < n; ++i) {
      const float x = pos(rng), y = pos(rng);
      boxes.insert(boxes.end(), {x, y, x + size(rng), y + size(rng)});
      const auto r = static_cast<unsigned>(rng() % 100);
      scores.push_back(r == 0   ? std::nanf("")
                       : r == 1 ? -std::numeric_limits<float>::infinity()
                                : static_cast<float>(rng() % 30) / 30.f);
      labels.push_back(static_cast<int64_t>(rng() % static_cast<unsigned>(num_labels)) * 3 - 7);  // any int64 values
    }
    const float iou = 0.05f + 0.1f * static_cast<float>(trial % 9);
    const at::Tensor b = at::tensor(boxes).view({n, 4}), s = at::tensor(scores), l = at::tensor(labels);
    const at::Tensor keep = batched_nms_on_device(b, s, l, iou);
    const std::vector<int64_t> got(keep.data_ptr<int64_t>(), keep.data_ptr<int64_t>() + keep.numel());
    EXPECT_EQ(got, run_batched(boxes, scores, labels, iou)) << "trial " << trial << ", " << n << " boxes";
  }
  EXPECT_EQ(batched_nms_on_device(at::zeros({0, 4}), at::zeros({0}), at::zeros({0}, at::kLong), 0.5).size(0), 0);
  EXPECT_THROW(batched_nms_on_device(at::zeros({3, 4}), at::zeros({3}), at::zeros({2}, at::kLong), 0.5), Error);
}

TEST(NmsTensor, WrapsTheRawVersionForAnyFloatDtype) {
  const Boxes boxes = {0, 0, 10, 10, 1, 1, 11, 11, 50, 50, 60, 60};
  const std::vector<float> scores = {0.8f, 0.9f, 0.7f};
  const at::Tensor b = at::tensor(boxes).view({3, 4}).to(at::kDouble);
  const at::Tensor s = at::tensor(scores).to(at::kDouble);
  const at::Tensor keep = nms(b, s, 0.5);
  EXPECT_EQ(keep.scalar_type(), at::kLong);
  ASSERT_EQ(keep.dim(), 1);
  ASSERT_EQ(keep.size(0), 2);
  EXPECT_EQ(keep[0].item<int64_t>(), 1);
  EXPECT_EQ(keep[1].item<int64_t>(), 2);

  const at::Tensor labels = at::tensor(std::vector<int64_t>{0, 1, 0}).to(at::kInt);
  const at::Tensor keep_b = batched_nms(b, s, labels, 0.5);
  EXPECT_EQ(keep_b.size(0), 3);  // 0 and 1 differ in class now
  EXPECT_EQ(nms(at::zeros({0, 4}), at::zeros({0}), 0.5).size(0), 0);
}

TEST(NmsTensor, ShapeMismatchesAreErrors) {
  EXPECT_THROW(nms(at::zeros({3, 5}), at::zeros({3}), 0.5), Error);
  EXPECT_THROW(nms(at::zeros({3, 4}), at::zeros({2}), 0.5), Error);
  EXPECT_THROW(batched_nms(at::zeros({3, 4}), at::zeros({3}), at::zeros({2}, at::kLong), 0.5), Error);
  EXPECT_THROW(batched_nms(at::zeros({3, 4}), at::zeros({3}), at::zeros({3}), 0.5), Error);
}

TEST(BoxIouTensor, MatchesTheScalarIouPairwise) {
  const Boxes a = {0, 0, 10, 10, 5, 5, 15, 25, 3, 3, 3, 3};
  const Boxes b = {5, 0, 15, 10, 0, 0, 10, 10};
  const at::Tensor m = box_iou(at::tensor(a).view({3, 4}), at::tensor(b).view({2, 4}));
  ASSERT_EQ(m.sizes(), (at::IntArrayRef{3, 2}));
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 2; ++j) {
      EXPECT_NEAR(m[i][j].item<float>(), box_iou(&a[4 * i], &b[4 * j]), 1e-6) << i << "," << j;
    }
  }
}

TEST(BoxIouTensor, GradientIsFiniteForEmptyUnions) {
  const at::Tensor a = at::zeros({1, 4}).set_requires_grad(true);
  box_iou(a, at::zeros({1, 4})).sum().backward();
  EXPECT_TRUE(at::isfinite(a.grad()).all().item<bool>());
}

TEST(BoxConversions, CentreSizeRoundTrip) {
  const at::Tensor cxcywh = at::tensor(std::vector<float>{5, 6, 4, 2}).view({1, 1, 4});
  const at::Tensor xyxy = cxcywh_to_xyxy(cxcywh);
  EXPECT_TRUE(at::allclose(xyxy, at::tensor(std::vector<float>{3, 5, 7, 7}).view({1, 1, 4})));
  EXPECT_TRUE(at::allclose(xyxy_to_cxcywh(xyxy), cxcywh));
  EXPECT_THROW(cxcywh_to_xyxy(at::zeros({2, 3})), Error);
}

}  // namespace
}  // namespace yolo2::ops
