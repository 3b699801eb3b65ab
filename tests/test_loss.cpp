// Tests of the region loss against independent float64 references written here: hand-built cases
// and its gradient against darknet's forward_region_layer deltas (PJ src/region_layer.c,
// yolov2-reference.md §2.2-§2.3) on random inputs. The focal losses' own tests are in
// test_focal_loss.cpp; their float64 references (loss_reference.hpp) check the region loss's class term.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "loss_reference.hpp"
#include "yolo2/loss/focal_loss.hpp"
#include "yolo2/loss/region_loss.hpp"
#include "yolo2/util/rng.hpp"

namespace {

namespace L = yolo2::loss;
using yolo2::testing::all_finite;
using yolo2::testing::dsigmoid;
using yolo2::testing::ElemRef;
using yolo2::testing::logit;
using yolo2::testing::near;
using yolo2::testing::RowRef;
using yolo2::testing::sigmoid;
using yolo2::testing::sigmoid_focal_ref;
using yolo2::testing::softmax_focal_ref;
using yolo2::util::Rng;

// ---------------------------------------------------------------------------------------------
// Region loss: helpers.

const std::vector<double> kVocAnchors{1.3221,  1.73145, 3.19275, 4.00944, 5.05587,
                                      8.09892, 9.47112, 4.84053, 11.2364, 10.0071};
constexpr int64_t kA = 5;
constexpr int64_t kX = 0, kY = 1, kW = 2, kH = 3, kO = 4, kCls = 5;  // entries of one prediction

double anchor_w(int64_t n) { return kVocAnchors[static_cast<std::size_t>(2 * n)]; }
double anchor_h(int64_t n) { return kVocAnchors[static_cast<std::size_t>(2 * n + 1)]; }

L::RegionLossOptions voc_options(int classes) {
  L::RegionLossOptions o;
  o.anchors = kVocAnchors;
  o.num_classes = classes;
  return o;
}

// A ground truth, normalised centre-size.
struct Gt {
  double cx, cy, w, h;
  int64_t label;
};

struct Targets {
  at::Tensor boxes, labels, counts;  // [B, M, 4] x1 y1 x2 y2, [B, M] int64 (-1 padding), [B] int64
};

// As the loader builds them; `pad` rows at least, the unused ones zero / -1.
Targets make_targets(const std::vector<std::vector<Gt>>& images, int64_t pad = 0) {
  int64_t m = pad;
  for (const auto& im : images) m = std::max<int64_t>(m, static_cast<int64_t>(im.size()));
  m = std::max<int64_t>(m, 1);
  const auto b_n = static_cast<int64_t>(images.size());
  Targets t{at::zeros({b_n, m, 4}, at::kFloat), at::full({b_n, m}, -1, at::kLong), at::zeros({b_n}, at::kLong)};
  auto bx = t.boxes.accessor<float, 3>();
  auto lb = t.labels.accessor<int64_t, 2>();
  for (int64_t b = 0; b < b_n; ++b) {
    const auto& im = images[static_cast<std::size_t>(b)];
    t.counts[b] = static_cast<int64_t>(im.size());
    for (std::size_t k = 0; k < im.size(); ++k) {
      const auto kk = static_cast<int64_t>(k);
      bx[b][kk][0] = static_cast<float>(im[k].cx - im[k].w / 2);
      bx[b][kk][1] = static_cast<float>(im[k].cy - im[k].h / 2);
      bx[b][kk][2] = static_cast<float>(im[k].cx + im[k].w / 2);
      bx[b][kk][3] = static_cast<float>(im[k].cy + im[k].h / 2);
      lb[b][kk] = im[k].label;
    }
  }
  return t;
}

// The network output [B, A*(5+C), H, W] with access by (image, anchor, entry, row, column).
struct Raw {
  int64_t b_n, c_n, h_n, w_n;
  at::Tensor t;  // [B, A, 5+C, H, W] float
  Raw(int64_t b, int64_t c, int64_t h, int64_t w)
      : b_n(b), c_n(c), h_n(h), w_n(w), t(at::zeros({b, kA, 5 + c, h, w}, at::kFloat)) {}
  float& operator()(int64_t b, int64_t n, int64_t e, int64_t j, int64_t i) {
    return t.data_ptr<float>()[(((b * kA + n) * (5 + c_n) + e) * h_n + j) * w_n + i];
  }
  float operator()(int64_t b, int64_t n, int64_t e, int64_t j, int64_t i) const {
    return t.data_ptr<float>()[(((b * kA + n) * (5 + c_n) + e) * h_n + j) * w_n + i];
  }
  at::Tensor raw() const { return t.reshape({b_n, kA * (5 + c_n), h_n, w_n}); }
  void randomize(uint64_t seed, double lo = -1, double hi = 1) {
    Rng rng(seed);
    float* p = t.data_ptr<float>();
    for (int64_t k = 0; k < t.numel(); ++k) p[k] = static_cast<float>(rng.uniform(lo, hi));
  }
};

// d loss / d raw, [B, A, 5+C, H, W] in double.
struct Grad {
  int64_t c_n, h_n, w_n;
  at::Tensor g;
  double operator()(int64_t b, int64_t n, int64_t e, int64_t j, int64_t i) const {
    return g.data_ptr<double>()[(((b * kA + n) * (5 + c_n) + e) * h_n + j) * w_n + i];
  }
};

Grad region_grad(const Raw& raw, const Targets& t, int64_t seen, const L::RegionLossOptions& o, double gamma = 0) {
  const at::Tensor x = raw.raw().clone().requires_grad_(true);
  const L::RegionLossResult r = L::region_loss(x, t.boxes, t.labels, t.counts, seen, gamma, o);
  r.total.backward();
  return Grad{raw.c_n, raw.h_n, raw.w_n, x.grad().to(at::kDouble).contiguous()};
}

// darknet box_iou on normalised centre-size boxes.
struct Box {
  double x, y, w, h;
};
double overlap(double x1, double w1, double x2, double w2) {
  return std::min(x1 + w1 / 2, x2 + w2 / 2) - std::max(x1 - w1 / 2, x2 - w2 / 2);
}
double box_iou(const Box& a, const Box& b) {
  const double w = overlap(a.x, a.w, b.x, b.w), h = overlap(a.y, a.h, b.y, b.h);
  const double inter = (w < 0 || h < 0) ? 0 : w * h;
  return inter / (a.w * a.h + b.w * b.h - inter);
}

Box pred_box(const Raw& raw, int64_t b, int64_t n, int64_t j, int64_t i) {
  return {(static_cast<double>(i) + sigmoid(raw(b, n, kX, j, i))) / static_cast<double>(raw.w_n),
          (static_cast<double>(j) + sigmoid(raw(b, n, kY, j, i))) / static_cast<double>(raw.h_n),
          std::exp(raw(b, n, kW, j, i)) * anchor_w(n) / static_cast<double>(raw.w_n),
          std::exp(raw(b, n, kH, j, i)) * anchor_h(n) / static_cast<double>(raw.h_n)};
}

std::vector<double> softmax_of(const Raw& raw, int64_t b, int64_t n, int64_t j, int64_t i) {
  std::vector<double> p(static_cast<std::size_t>(raw.c_n));
  double mx = -1e300, s = 0;
  for (int64_t c = 0; c < raw.c_n; ++c) mx = std::max<double>(mx, raw(b, n, kCls + c, j, i));
  for (int64_t c = 0; c < raw.c_n; ++c) s += p[static_cast<std::size_t>(c)] = std::exp(raw(b, n, kCls + c, j, i) - mx);
  for (auto& x : p) x /= s;
  return p;
}

// Counts gradient entries that break `expect_nonzero(b, n, e, j, i)` (true: must be non-zero,
// false: must be exactly zero) over the entries `es`; describes the first few.
std::string zero_pattern_violations(const Grad& g, int64_t b_n, const std::vector<int64_t>& es,
                                    const std::function<bool(int64_t, int64_t, int64_t, int64_t, int64_t)>& nonzero) {
  std::ostringstream s;
  int bad = 0;
  for (int64_t b = 0; b < b_n; ++b)
    for (int64_t n = 0; n < kA; ++n)
      for (int64_t e : es)
        for (int64_t j = 0; j < g.h_n; ++j)
          for (int64_t i = 0; i < g.w_n; ++i) {
            const double v = g(b, n, e, j, i);
            if ((v != 0) != nonzero(b, n, e, j, i)) {
              if (bad++ < 5)
                s << "(b " << b << " n " << n << " e " << e << " j " << j << " i " << i << ") = " << v << "; ";
            }
          }
  return bad ? std::to_string(bad) + " violations: " + s.str() : std::string();
}

// ---------------------------------------------------------------------------------------------
// Region loss: hand-built cases (13x13, the 5 VOC anchors, C = 3).

TEST(RegionLoss, OnlyTheResponsibleCellAndAnchorGetCoordinateAndClassGradients) {
  Raw raw(2, 3, 13, 13);
  raw.randomize(1);
  // Image 0: centre (0.37, 0.61) -> i = floor(4.81) = 4, j = floor(7.93) = 7; 3.9 x 4.55 cells:
  // shape IoU with anchor 1 (3.19 x 4.01) 0.72, anchor 2 0.43, anchor 3 0.39 -> anchor 1.
  // Image 1: centre (0.80, 0.15) -> i = 10, j = 1; 0.65 x 1.04 cells: anchor 0 (0.30; anchor 1 0.05).
  const Targets t = make_targets({{{0.37, 0.61, 0.30, 0.35, 2}}, {{0.80, 0.15, 0.05, 0.08, 0}}});
  const Grad g = region_grad(raw, t, 12800, voc_options(3));  // warm-up off
  auto responsible = [](int64_t b, int64_t n, int64_t, int64_t j, int64_t i) {
    return (b == 0 && n == 1 && j == 7 && i == 4) || (b == 1 && n == 0 && j == 1 && i == 10);
  };
  EXPECT_EQ(zero_pattern_violations(g, 2, {kX, kY, kW, kH, kCls, kCls + 1, kCls + 2}, responsible), "");
  // Objectness: every prediction but the ignored ones gets a gradient, the responsible ones too.
  EXPECT_NE(g(0, 1, kO, 7, 4), 0.0);
  EXPECT_NE(g(1, 0, kO, 1, 10), 0.0);
}

TEST(RegionLoss, IgnoresNonResponsiblePredictionsAboveThreshAndPenalisesTheRest) {
  Raw raw(2, 3, 13, 13);
  raw.randomize(2, -0.5, 0.5);
  // The ground truth is anchor 1's shape centred in cell (6, 6): (6, 6, anchor 1) is responsible.
  // Same-shape predictions of anchor 1 shifted by d cells along x have IoU (w - d) / (w + d).
  const double gw = anchor_w(1) / 13, gh = anchor_h(1) / 13;
  const Targets t = make_targets({{{6.5 / 13, 6.5 / 13, gw, gh, 1}}, {}});
  auto place = [&](int64_t i, double sx, double to) {
    raw(0, 1, kX, 6, i) = static_cast<float>(logit(sx));
    raw(0, 1, kY, 6, i) = 0;
    raw(0, 1, kW, 6, i) = 0;
    raw(0, 1, kH, 6, i) = 0;
    raw(0, 1, kO, 6, i) = static_cast<float>(to);
  };
  place(7, 0.25, 0.3);   // centre 7.25: d = 0.75
  place(5, 0.65, -0.4);  // centre 5.65: d = 0.85
  const Box gt{6.5 / 13, 6.5 / 13, gw, gh};
  const double iou_a = box_iou(pred_box(raw, 0, 1, 6, 7), gt), iou_b = box_iou(pred_box(raw, 0, 1, 6, 5), gt);
  ASSERT_GT(iou_a, 0.6);
  ASSERT_LT(iou_a, 0.65);
  ASSERT_LE(iou_b, 0.6);
  ASSERT_GT(iou_b, 0.55);

  L::RegionLossOptions o = voc_options(3);
  o.noobject_scale = 2;
  const Grad g = region_grad(raw, t, 12800, o);
  EXPECT_EQ(g(0, 1, kO, 6, 7), 0.0);
  const double to_b = raw(0, 1, kO, 6, 5);
  EXPECT_TRUE(near(g(0, 1, kO, 6, 5), 2 * sigmoid(to_b) * dsigmoid(to_b) / 2));
  // An image without ground truths: every prediction is a negative.
  for (int64_t n = 0; n < kA; ++n)
    for (int64_t j = 0; j < 13; ++j)
      for (int64_t i = 0; i < 13; ++i) {
        const double to = raw(1, n, kO, j, i);
        EXPECT_TRUE(near(g(1, n, kO, j, i), 2 * sigmoid(to) * dsigmoid(to) / 2)) << n << " " << j << " " << i;
      }

  // A higher thresh: the prediction with IoU 0.62 is a negative too.
  o.thresh = 0.65;
  const Grad g2 = region_grad(raw, t, 12800, o);
  const double to_a = raw(0, 1, kO, 6, 7);
  EXPECT_TRUE(near(g2(0, 1, kO, 6, 7), 2 * sigmoid(to_a) * dsigmoid(to_a) / 2));
}

TEST(RegionLoss, RescoreTargetsTheIouOfThePredictedBox) {
  Raw raw(1, 3, 13, 13);
  raw.randomize(3);
  // Centre (0.52, 0.43) -> i = floor(6.76) = 6, j = floor(5.59) = 5; 3.64 x 4.29 cells -> anchor 1
  // (shape IoU 0.82; anchor 2 0.38).
  const Gt gt{0.52, 0.43, 0.28, 0.33, 1};
  const Targets t = make_targets({{gt}});
  raw(0, 1, kX, 5, 6) = 0.3f;
  raw(0, 1, kY, 5, 6) = -0.2f;
  raw(0, 1, kW, 5, 6) = 0.1f;
  raw(0, 1, kH, 5, 6) = -0.15f;
  raw(0, 1, kO, 5, 6) = 0.4f;
  const Box pred = pred_box(raw, 0, 1, 5, 6);
  EXPECT_NEAR(pred.x, (6 + sigmoid(0.3)) / 13, 1e-7);  // the hand values, to show what pred_box reads
  EXPECT_NEAR(pred.w, std::exp(0.1) * anchor_w(1) / 13, 1e-7);
  const double iou = box_iou(pred, {gt.cx, gt.cy, gt.w, gt.h});
  ASSERT_GT(iou, 0.5);
  ASSERT_LT(iou, 0.95);
  const double to = raw(0, 1, kO, 5, 6), so = sigmoid(to), ds = dsigmoid(to);
  L::RegionLossOptions o = voc_options(3);
  EXPECT_TRUE(near(region_grad(raw, t, 20000, o)(0, 1, kO, 5, 6), -5 * (iou - so) * ds));
  o.rescore = false;
  EXPECT_TRUE(near(region_grad(raw, t, 20000, o)(0, 1, kO, 5, 6), -5 * (1 - so) * ds));
  o.object_scale = 3;
  EXPECT_TRUE(near(region_grad(raw, t, 20000, o)(0, 1, kO, 5, 6), -3 * (1 - so) * ds));
}

TEST(RegionLoss, CoordinatesWeighTwoMinusAreaUnlessSmallBoxWeightIsOff) {
  Raw raw(2, 3, 13, 13);
  raw.randomize(4);
  // Centre (0.45, 0.55) -> i = floor(5.85) = 5, j = floor(7.15) = 7; 7.8 x 9.1 cells -> anchor 4
  // (shape IoU 0.63; anchor 2 0.58, anchor 3 0.48). w h = 0.42.
  const Gt gt{0.45, 0.55, 0.6, 0.7, 0};
  const Targets t = make_targets({{gt}, {}});
  const float x1 = static_cast<float>(gt.cx - gt.w / 2), x2 = static_cast<float>(gt.cx + gt.w / 2);
  const float y1 = static_cast<float>(gt.cy - gt.h / 2), y2 = static_cast<float>(gt.cy + gt.h / 2);
  const double cx = (x1 + x2) / 2.0f, cy = (y1 + y2) / 2.0f, w = x2 - x1, h = y2 - y1;  // as the loss sees it
  const double tx = cx * 13 - 5, ty = cy * 13 - 7, tw = std::log(w * 13 / anchor_w(4)),
               th = std::log(h * 13 / anchor_h(4));
  const double px = raw(0, 4, kX, 7, 5), py = raw(0, 4, kY, 7, 5), pw = raw(0, 4, kW, 7, 5), ph = raw(0, 4, kH, 7, 5);
  for (bool small_box_weight : {true, false}) {
    SCOPED_TRACE(small_box_weight);
    L::RegionLossOptions o = voc_options(3);
    o.coord_scale = 1.5;
    o.small_box_weight = small_box_weight;
    const double s = 1.5 * (small_box_weight ? 2 - w * h : 1.0);
    const Grad g = region_grad(raw, t, 12800, o);
    EXPECT_TRUE(near(g(0, 4, kX, 7, 5), -s * (tx - sigmoid(px)) * dsigmoid(px) / 2));
    EXPECT_TRUE(near(g(0, 4, kY, 7, 5), -s * (ty - sigmoid(py)) * dsigmoid(py) / 2));
    EXPECT_TRUE(near(g(0, 4, kW, 7, 5), -s * (tw - pw) / 2));
    EXPECT_TRUE(near(g(0, 4, kH, 7, 5), -s * (th - ph) / 2));
  }
}

TEST(RegionLoss, WarmupPullsEveryOtherPredictionTowardItsAnchorBefore12800Images) {
  Raw raw(2, 3, 13, 13);
  raw.randomize(5);
  const Targets t = make_targets({{{0.37, 0.61, 0.30, 0.35, 2}}, {{0.80, 0.15, 0.05, 0.08, 0}}});
  auto responsible = [](int64_t b, int64_t n, int64_t j, int64_t i) {
    return (b == 0 && n == 1 && j == 7 && i == 4) || (b == 1 && n == 0 && j == 1 && i == 10);
  };
  const L::RegionLossOptions o = voc_options(3);
  const Grad off = region_grad(raw, t, 12800, o);
  // After warm-up: no x/y/w/h gradient anywhere but at the responsible predictions.
  for (int64_t seen : {int64_t{12800}, int64_t{100000}}) {
    const Grad g = region_grad(raw, t, seen, o);
    EXPECT_EQ(zero_pattern_violations(
                  g, 2, {kX, kY, kW, kH},
                  [&](int64_t b, int64_t n, int64_t, int64_t j, int64_t i) { return responsible(b, n, j, i); }),
              "")
        << "seen " << seen;
  }
  for (int64_t seen : {int64_t{64}, int64_t{12799}}) {
    SCOPED_TRACE(seen);
    const Grad g = region_grad(raw, t, seen, o);
    int bad = 0;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t n = 0; n < kA; ++n)
        for (int64_t j = 0; j < 13; ++j)
          for (int64_t i = 0; i < 13; ++i) {
            if (responsible(b, n, j, i)) {
              // darknet overwrites the warm-up deltas of the responsible prediction.
              for (int64_t e : {kX, kY, kW, kH}) bad += !near(g(b, n, e, j, i), off(b, n, e, j, i), 1e-6, 1e-9);
              continue;
            }
            for (int64_t e : {kX, kY}) {
              const double v = raw(b, n, e, j, i);
              bad += !near(g(b, n, e, j, i), 0.01 * (sigmoid(v) - 0.5) * dsigmoid(v) / 2, 1e-5, 1e-9);
            }
            for (int64_t e : {kW, kH}) bad += !near(g(b, n, e, j, i), 0.01 * raw(b, n, e, j, i) / 2, 1e-5, 1e-9);
            // Warm-up leaves objectness and classes alone.
            for (int64_t e = kO; e < kCls + 3; ++e) bad += !near(g(b, n, e, j, i), off(b, n, e, j, i), 1e-6, 1e-12);
          }
    EXPECT_EQ(bad, 0);
  }
}

TEST(RegionLoss, TwoGroundTruthsOnOneCellAndAnchorTheLaterWins) {
  Raw raw(1, 3, 13, 13);
  raw.randomize(6);
  // Both in cell (5, 5) (centres 5.2 and 5.46 / 5.72 cells), 3.25 x 3.9 and 3.51 x 4.03 cells:
  // both anchor 1.
  const Gt first{0.40, 0.40, 0.25, 0.30, 0}, second{0.42, 0.44, 0.27, 0.31, 2};
  const L::RegionLossOptions o = voc_options(3);
  const Grad both = region_grad(raw, make_targets({{first, second}}), 20000, o);
  const Grad only_second = region_grad(raw, make_targets({{second}}), 20000, o);
  const Grad only_first = region_grad(raw, make_targets({{first}}), 20000, o);
  for (int64_t e = 0; e < 8; ++e) {
    EXPECT_TRUE(near(both(0, 1, e, 5, 5), only_second(0, 1, e, 5, 5), 1e-6, 1e-9)) << "entry " << e;
    if (e != kCls + 1) {  // class 1 is in neither one-hot: the same p_1 either way
      EXPECT_FALSE(near(both(0, 1, e, 5, 5), only_first(0, 1, e, 5, 5), 1e-3, 1e-6)) << "entry " << e;
    }
  }
  auto resp = [](int64_t, int64_t n, int64_t, int64_t j, int64_t i) { return n == 1 && j == 5 && i == 5; };
  EXPECT_EQ(zero_pattern_violations(both, 1, {kX, kY, kW, kH, kCls, kCls + 1, kCls + 2}, resp), "");
}

TEST(RegionLoss, TwoGroundTruthsOnOneCellWithDifferentAnchorsAreBothResponsible) {
  Raw raw(1, 3, 13, 13);
  raw.randomize(7);
  // Both in cell (5, 5): 1.04 x 1.56 cells -> anchor 0; 9.1 x 4.55 cells -> anchor 3 (shape IoU 0.90).
  const Gt narrow{0.40, 0.40, 0.08, 0.12, 0}, wide{0.41, 0.42, 0.70, 0.35, 1};
  const L::RegionLossOptions o = voc_options(3);
  const Grad both = region_grad(raw, make_targets({{narrow, wide}}), 20000, o);
  const Grad g_narrow = region_grad(raw, make_targets({{narrow}}), 20000, o);
  const Grad g_wide = region_grad(raw, make_targets({{wide}}), 20000, o);
  for (int64_t e = 0; e < 8; ++e) {
    if (e == kO) continue;  // the other one's objectness may be ignored or penalised
    EXPECT_TRUE(near(both(0, 0, e, 5, 5), g_narrow(0, 0, e, 5, 5), 1e-6, 1e-9)) << "entry " << e;
    EXPECT_TRUE(near(both(0, 3, e, 5, 5), g_wide(0, 3, e, 5, 5), 1e-6, 1e-9)) << "entry " << e;
  }
  EXPECT_TRUE(near(both(0, 0, kO, 5, 5), g_narrow(0, 0, kO, 5, 5), 1e-6, 1e-9));
  EXPECT_TRUE(near(both(0, 3, kO, 5, 5), g_wide(0, 3, kO, 5, 5), 1e-6, 1e-9));
  auto resp = [](int64_t, int64_t n, int64_t, int64_t j, int64_t i) { return (n == 0 || n == 3) && j == 5 && i == 5; };
  EXPECT_EQ(zero_pattern_violations(both, 1, {kX, kY, kW, kH, kCls, kCls + 1, kCls + 2}, resp), "");
}

TEST(RegionLoss, OnlyTheFirstMaxBoxesGroundTruthsAreUsed) {
  Raw raw(1, 3, 13, 13);
  raw.randomize(8);
  const Gt a{0.2, 0.2, 0.1, 0.1, 0}, b{0.5, 0.5, 0.3, 0.3, 1}, c{0.85, 0.85, 0.2, 0.2, 2};
  L::RegionLossOptions o = voc_options(3);
  const Grad first_two = region_grad(raw, make_targets({{a, b}}), 20000, o);
  const Grad all_three = region_grad(raw, make_targets({{a, b, c}}), 20000, o);
  o.max_boxes = 2;
  const Grad capped = region_grad(raw, make_targets({{a, b, c}}), 20000, o);
  EXPECT_TRUE(at::equal(capped.g, first_two.g));
  EXPECT_FALSE(at::allclose(all_three.g, first_two.g));
}

TEST(RegionLoss, RowsPastTheCountAreIgnored) {
  Raw raw(2, 3, 13, 13);
  raw.randomize(9);
  const Gt a{0.2, 0.3, 0.1, 0.15, 0}, b{0.6, 0.5, 0.3, 0.2, 1};
  const L::RegionLossOptions o = voc_options(3);
  const Targets clean = make_targets({{a}, {b}});
  Targets padded = make_targets({{a, b, b}, {b, a, a}}, 6);
  padded.counts = at::tensor({int64_t{1}, int64_t{1}});
  EXPECT_TRUE(at::equal(region_grad(raw, padded, 20000, o).g, region_grad(raw, clean, 20000, o).g));
}

TEST(RegionLoss, AnchorShapeTiesGoToTheFirstAnchor) {
  // A 1.5 x 1.5 cell square has exactly the same shape IoU (1.5 / 2.75) with 1 x 2 and 2 x 1
  // anchors (the same products, only swapped): darknet's strict '>' keeps the first.
  Raw raw(1, 3, 13, 13);
  raw.randomize(13);
  const Targets t = make_targets({{{6.5 / 13, 6.5 / 13, 1.5 / 13, 1.5 / 13, 0}}});
  for (const std::vector<double>& anchors :
       {std::vector<double>{1, 2, 2, 1, 3, 3, 5, 5, 8, 8}, std::vector<double>{2, 1, 1, 2, 3, 3, 5, 5, 8, 8}}) {
    L::RegionLossOptions o = voc_options(3);
    o.anchors = anchors;
    const Grad g = region_grad(raw, t, 20000, o);
    auto first = [](int64_t, int64_t n, int64_t, int64_t j, int64_t i) { return n == 0 && j == 6 && i == 6; };
    EXPECT_EQ(zero_pattern_violations(g, 1, {kX, kY, kW, kH, kCls}, first), "") << "anchors " << anchors[0];
  }
}

TEST(RegionLoss, CrossEntropyClassGradientIsScaledProbabilityMinusOneHot) {
  Raw raw(2, 3, 13, 13);
  raw.randomize(10, -2, 2);
  const Targets t = make_targets({{{0.37, 0.61, 0.30, 0.35, 2}}, {{0.80, 0.15, 0.05, 0.08, 0}}});
  L::RegionLossOptions o = voc_options(3);
  o.class_scale = 2;
  const Grad g = region_grad(raw, t, 20000, o);
  struct R {
    int64_t b, n, j, i, label;
  };
  for (const R& r : {R{0, 1, 7, 4, 2}, R{1, 0, 1, 10, 0}}) {
    const std::vector<double> p = softmax_of(raw, r.b, r.n, r.j, r.i);
    for (int64_t c = 0; c < 3; ++c)
      EXPECT_TRUE(
          near(g(r.b, r.n, kCls + c, r.j, r.i), 2 * (p[static_cast<std::size_t>(c)] - (c == r.label)) / 2, 1e-6, 1e-8))
          << "image " << r.b << " class " << c;
  }
}

TEST(RegionLoss, FocalClassTermUsesTheCurrentGammaAndAlpha) {
  Raw raw(2, 3, 13, 13);
  raw.randomize(11, -2, 2);
  const Targets t = make_targets({{{0.37, 0.61, 0.30, 0.35, 2}}, {{0.80, 0.15, 0.05, 0.08, 0}}});
  L::RegionLossOptions o = voc_options(3);
  o.classification = yolo2::loss::ClassLoss::Focal;
  o.class_scale = 1.5;
  const std::vector<double> alpha{0.5, 1.0, 2.0};
  o.alpha = at::tensor(alpha, at::kFloat);
  struct R {
    int64_t b, n, j, i, label;
  };
  for (double gamma : {0.0, 0.5, 2.0}) {
    const Grad g = region_grad(raw, t, 20000, o, gamma);
    for (const R& r : {R{0, 1, 7, 4, 2}, R{1, 0, 1, 10, 0}}) {
      std::vector<double> z(3);
      for (int64_t c = 0; c < 3; ++c) z[static_cast<std::size_t>(c)] = raw(r.b, r.n, kCls + c, r.j, r.i);
      const auto lab = static_cast<std::size_t>(r.label);
      const RowRef ref = softmax_focal_ref(z, lab, gamma, alpha[lab]);
      for (int64_t c = 0; c < 3; ++c)
        EXPECT_TRUE(near(g(r.b, r.n, kCls + c, r.j, r.i), 1.5 * ref.grad[static_cast<std::size_t>(c)] / 2))
            << "gamma " << gamma << " image " << r.b << " class " << c;
    }
  }
}

TEST(RegionLoss, SigmoidFocalClassTermMatchesTorchvisionFormula) {
  Raw raw(1, 3, 13, 13);
  raw.randomize(12, -2, 2);
  const Targets t = make_targets({{{0.37, 0.61, 0.30, 0.35, 2}}});
  L::RegionLossOptions o = voc_options(3);
  o.classification = yolo2::loss::ClassLoss::SigmoidFocal;
  o.sigmoid_alpha = 0.25;
  const Grad g = region_grad(raw, t, 20000, o, 2.0);
  for (int64_t c = 0; c < 3; ++c) {
    const ElemRef e = sigmoid_focal_ref(raw(0, 1, kCls + c, 7, 4), c == 2 ? 1.0 : 0.0, 2.0, 0.25);
    EXPECT_TRUE(near(g(0, 1, kCls + c, 7, 4), e.grad)) << "class " << c;
  }
}

TEST(RegionLoss, TermsSumToTheTotalAndDiagnosticsFollowDarknet) {
  Raw raw(2, 3, 13, 13);
  raw.randomize(14);
  const Gt g0{0.37, 0.61, 0.30, 0.35, 2}, g1{0.80, 0.15, 0.05, 0.08, 0};
  // Image 0's responsible prediction on its box but 1.57 x wider, 0.9 x lower (IoU 0.598, in
  // (.5, .6)), image 1's far off (IoU < .5).
  raw(0, 1, kX, 7, 4) = static_cast<float>(logit(0.37 * 13 - 4));
  raw(0, 1, kY, 7, 4) = static_cast<float>(logit(0.61 * 13 - 7));
  raw(0, 1, kW, 7, 4) = static_cast<float>(std::log(0.30 * 13 / anchor_w(1)) + 0.45);
  raw(0, 1, kH, 7, 4) = static_cast<float>(std::log(0.35 * 13 / anchor_h(1)) - 0.1);
  raw(1, 0, kW, 1, 10) = 1.5f;
  const Targets t = make_targets({{g0}, {g1}});
  L::RegionLossOptions o = voc_options(3);
  const int64_t seen = 6400;  // warm-up on
  const at::Tensor x = raw.raw().clone();
  const L::RegionLossResult r = L::region_loss(x, t.boxes, t.labels, t.counts, seen, 0.0, o);

  struct R {
    int64_t b, n, j, i;
    Gt gt;
  };
  const R resp[] = {{0, 1, 7, 4, g0}, {1, 0, 1, 10, g1}};
  double obj = 0, cls = 0, iou_sum = 0, p_sum = 0, so_sum = 0, hits = 0;
  std::vector<double> ious;
  for (const R& q : resp) {
    const double iou = box_iou(pred_box(raw, q.b, q.n, q.j, q.i), {q.gt.cx, q.gt.cy, q.gt.w, q.gt.h});
    const double so = sigmoid(raw(q.b, q.n, kO, q.j, q.i));
    const double p = softmax_of(raw, q.b, q.n, q.j, q.i)[static_cast<std::size_t>(q.gt.label)];
    ious.push_back(iou);
    obj += 0.5 * 5 * (iou - so) * (iou - so);
    cls += -std::log(p);
    iou_sum += iou, p_sum += p, so_sum += so, hits += iou > 0.5;
  }
  ASSERT_GT(ious[0], 0.5);
  ASSERT_LT(ious[0], 0.6);
  ASSERT_LT(ious[1], 0.5);
  double noobj = 0, warm = 0, any = 0;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t n = 0; n < kA; ++n)
      for (int64_t j = 0; j < 13; ++j)
        for (int64_t i = 0; i < 13; ++i) {
          const double so = sigmoid(raw(b, n, kO, j, i));
          any += so;
          if ((b == 0 && n == 1 && j == 7 && i == 4) || (b == 1 && n == 0 && j == 1 && i == 10)) continue;
          const Gt& g = b == 0 ? g0 : g1;
          if (box_iou(pred_box(raw, b, n, j, i), {g.cx, g.cy, g.w, g.h}) <= 0.6) noobj += 0.5 * so * so;
          const double sx = sigmoid(raw(b, n, kX, j, i)), sy = sigmoid(raw(b, n, kY, j, i));
          const double tw = raw(b, n, kW, j, i), th = raw(b, n, kH, j, i);
          warm += 0.5 * 0.01 * ((sx - 0.5) * (sx - 0.5) + (sy - 0.5) * (sy - 0.5) + tw * tw + th * th);
        }
  EXPECT_TRUE(near(r.object, obj / 2));
  EXPECT_TRUE(near(r.cls, cls / 2));
  EXPECT_TRUE(near(r.noobject, noobj / 2));
  EXPECT_TRUE(near(r.warmup, warm / 2));
  EXPECT_GT(r.coord, 0);
  EXPECT_TRUE(near(r.total.item<double>(), r.coord + r.object + r.noobject + r.cls + r.warmup));
  EXPECT_EQ(r.count, 2);
  EXPECT_TRUE(near(r.avg_iou, iou_sum / 2));
  EXPECT_TRUE(near(r.avg_class, p_sum / 2));
  EXPECT_TRUE(near(r.avg_obj, so_sum / 2));
  EXPECT_TRUE(near(r.avg_noobj, any / (2 * kA * 13 * 13)));
  EXPECT_DOUBLE_EQ(r.recall50, hits / 2);
}

TEST(RegionLoss, BatchWithoutGroundTruthsIsFiniteWithZeroDiagnostics) {
  Raw raw(2, 3, 13, 13);
  raw.randomize(15);
  for (const Targets& t :
       {make_targets({{}, {}}, 4),
        Targets{at::zeros({2, 0, 4}, at::kFloat), at::zeros({2, 0}, at::kLong), at::zeros({2}, at::kLong)}}) {
    const at::Tensor x = raw.raw().clone().requires_grad_(true);
    const L::RegionLossResult r = L::region_loss(x, t.boxes, t.labels, t.counts, 20000, 0.0, voc_options(3));
    r.total.backward();
    EXPECT_TRUE(all_finite(r.total));
    EXPECT_TRUE(all_finite(x.grad()));
    EXPECT_EQ(r.count, 0);
    EXPECT_EQ(r.avg_iou, 0.0);
    EXPECT_EQ(r.avg_class, 0.0);
    EXPECT_EQ(r.avg_obj, 0.0);
    EXPECT_EQ(r.recall50, 0.0);
    EXPECT_EQ(r.coord, 0.0);
    EXPECT_EQ(r.cls, 0.0);
    EXPECT_GT(r.noobject, 0.0);  // every prediction is a negative
  }
}

// ---------------------------------------------------------------------------------------------
// Region loss against darknet's forward_region_layer deltas on random inputs.

struct DarknetStats {
  int ignored = 0;      // non-responsible predictions whose best IoU > thresh
  int overwritten = 0;  // ground truths replaced by a later one on the same (cell, anchor)
  int assigned = 0;
};

// PJ darknet src/region_layer.c forward_region_layer with plain loops (DOABS: sizes relative to the
// grid), then backward_region_layer_gpu: x, y and objectness deltas times sigma', the rest as is;
// darknet's delta is -d loss / d output; region_loss divides the sum by the batch size.
std::vector<double> darknet_region_grad(const Raw& raw, const Targets& targets, int64_t seen,
                                        const L::RegionLossOptions& o, DarknetStats& st) {
  const int64_t b_n = raw.b_n, c_n = raw.c_n, h_n = raw.h_n, w_n = raw.w_n, e_n = 5 + c_n;
  const auto H = static_cast<double>(h_n), W = static_cast<double>(w_n);
  std::vector<double> delta(static_cast<std::size_t>(b_n * kA * e_n * h_n * w_n), 0.0);
  auto idx = [&](int64_t b, int64_t n, int64_t e, int64_t j, int64_t i) {
    return static_cast<std::size_t>((((b * kA + n) * e_n + e) * h_n + j) * w_n + i);
  };
  auto out = [&](int64_t b, int64_t n, int64_t e, int64_t j, int64_t i) -> double { return raw(b, n, e, j, i); };
  const auto bx = targets.boxes.accessor<float, 3>();
  const auto lb = targets.labels.accessor<int64_t, 2>();
  for (int64_t b = 0; b < b_n; ++b) {
    std::vector<Box> truth;
    std::vector<int64_t> label;
    const int64_t count = std::min<int64_t>(targets.counts[b].item<int64_t>(), o.max_boxes);
    for (int64_t t = 0; t < count; ++t) {
      // The loader's x1 y1 x2 y2 to darknet's centre-size, in float as the loss reads it.
      const float x = (bx[b][t][0] + bx[b][t][2]) / 2, y = (bx[b][t][1] + bx[b][t][3]) / 2;
      const float w = bx[b][t][2] - bx[b][t][0], h = bx[b][t][3] - bx[b][t][1];
      truth.push_back({x, y, w, h});
      label.push_back(lb[b][t]);
    }
    for (int64_t j = 0; j < h_n; ++j)
      for (int64_t i = 0; i < w_n; ++i)
        for (int64_t n = 0; n < kA; ++n) {
          const Box pred = pred_box(raw, b, n, j, i);
          double best_iou = 0;
          for (const Box& g : truth) best_iou = std::max(best_iou, box_iou(pred, g));
          delta[idx(b, n, kO, j, i)] = o.noobject_scale * (0 - sigmoid(out(b, n, kO, j, i)));
          if (best_iou > o.thresh) {
            delta[idx(b, n, kO, j, i)] = 0;
            ++st.ignored;
          }
          if (seen < o.warmup_images) {
            // delta_region_box(truth = ((i + .5) / W, (j + .5) / H, anchor / (W, H)), scale .01)
            const double s = o.warmup_scale;
            delta[idx(b, n, kX, j, i)] = s * (0.5 - sigmoid(out(b, n, kX, j, i)));
            delta[idx(b, n, kY, j, i)] = s * (0.5 - sigmoid(out(b, n, kY, j, i)));
            delta[idx(b, n, kW, j, i)] = s * (0 - out(b, n, kW, j, i));
            delta[idx(b, n, kH, j, i)] = s * (0 - out(b, n, kH, j, i));
          }
        }
    std::set<std::size_t> used;
    for (std::size_t t = 0; t < truth.size(); ++t) {
      const Box& g = truth[t];
      const auto i = static_cast<int64_t>(g.x * W), j = static_cast<int64_t>(g.y * H);
      int64_t best_n = 0;
      double best_iou = 0;
      for (int64_t n = 0; n < kA; ++n) {  // bias_match: shape only, strict >
        const double iou = box_iou({0, 0, anchor_w(n) / W, anchor_h(n) / H}, {0, 0, g.w, g.h});
        if (iou > best_iou) best_iou = iou, best_n = n;
      }
      const double scale = o.coord_scale * (o.small_box_weight ? 2 - g.w * g.h : 1.0);
      const int64_t n = best_n;
      delta[idx(b, n, kX, j, i)] = scale * (g.x * W - static_cast<double>(i) - sigmoid(out(b, n, kX, j, i)));
      delta[idx(b, n, kY, j, i)] = scale * (g.y * H - static_cast<double>(j) - sigmoid(out(b, n, kY, j, i)));
      delta[idx(b, n, kW, j, i)] = scale * (std::log(g.w * W / anchor_w(n)) - out(b, n, kW, j, i));
      delta[idx(b, n, kH, j, i)] = scale * (std::log(g.h * H / anchor_h(n)) - out(b, n, kH, j, i));
      const double iou = box_iou(pred_box(raw, b, n, j, i), g);
      delta[idx(b, n, kO, j, i)] = o.object_scale * ((o.rescore ? iou : 1.0) - sigmoid(out(b, n, kO, j, i)));
      const std::vector<double> p = softmax_of(raw, b, n, j, i);
      for (int64_t c = 0; c < c_n; ++c)
        delta[idx(b, n, kCls + c, j, i)] =
            o.class_scale * ((c == label[t] ? 1.0 : 0.0) - p[static_cast<std::size_t>(c)]);
      ++st.assigned;
      if (!used.insert(idx(b, n, 0, j, i)).second) ++st.overwritten;
    }
  }
  std::vector<double> grad(delta.size());
  for (int64_t b = 0; b < b_n; ++b)
    for (int64_t n = 0; n < kA; ++n)
      for (int64_t e = 0; e < e_n; ++e)
        for (int64_t j = 0; j < h_n; ++j)
          for (int64_t i = 0; i < w_n; ++i) {
            const std::size_t k = idx(b, n, e, j, i);
            const double chain = (e == kX || e == kY || e == kO) ? dsigmoid(out(b, n, e, j, i)) : 1.0;
            grad[k] = -delta[k] * chain / static_cast<double>(b_n);
          }
  return grad;
}

// Random outputs and ground truths: free ones, a pair on one (cell, anchor), and one shifted a
// cell away from a large predicted box (so that the prediction it came from is ignored).
void random_region_case(Raw& raw, std::vector<std::vector<Gt>>& images, uint64_t seed) {
  Rng rng(seed);
  float* p = raw.t.data_ptr<float>();
  for (int64_t k = 0; k < raw.t.numel(); ++k) p[k] = static_cast<float>(rng.uniform(-2, 2));
  for (int64_t b = 0; b < raw.b_n; ++b)
    for (int64_t n = 0; n < kA; ++n)
      for (int64_t j = 0; j < raw.h_n; ++j)
        for (int64_t i = 0; i < raw.w_n; ++i)
          for (int64_t e : {kW, kH}) raw(b, n, e, j, i) = static_cast<float>(rng.uniform(-0.8, 0.8));
  const auto H = static_cast<double>(raw.h_n), W = static_cast<double>(raw.w_n);
  images.assign(static_cast<std::size_t>(raw.b_n), {});
  for (int64_t b = 0; b < raw.b_n; ++b) {
    auto& gts = images[static_cast<std::size_t>(b)];
    const auto label = [&] { return rng.uniform_int(0, raw.c_n - 1); };
    for (int k = 0; k < 5; ++k)
      gts.push_back(
          {rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.95), rng.uniform(0.03, 0.7), rng.uniform(0.03, 0.7), label()});
    for (int k = 0; k < 2; ++k) {
      // Same cell, nearly the same shape as an earlier one: the later one overwrites.
      const Gt a = gts[static_cast<std::size_t>(k)];  // a copy: push_back reallocates
      const double ci = std::floor(a.cx * W), cj = std::floor(a.cy * H);
      gts.push_back({(ci + rng.uniform(0.1, 0.9)) / W, (cj + rng.uniform(0.1, 0.9)) / H, a.w * rng.uniform(0.98, 1.02),
                     a.h * rng.uniform(0.98, 1.02), label()});
    }
    for (int k = 0; k < 2; ++k) {
      const int64_t n = rng.uniform_int(2, 4), j = rng.uniform_int(0, raw.h_n - 1), i = rng.uniform_int(0, raw.w_n - 2);
      raw(b, n, kW, j, i) = 0.3f;
      raw(b, n, kH, j, i) = 0.3f;
      const Box pb = pred_box(raw, b, n, j, i);
      gts.push_back({pb.x + 1.0 / W, pb.y, pb.w * rng.uniform(0.97, 1.03), pb.h * rng.uniform(0.97, 1.03), label()});
    }
    // Shuffle so that the special ones are not always last.
    for (std::size_t k = gts.size() - 1; k > 0; --k)
      std::swap(gts[k], gts[static_cast<std::size_t>(rng.uniform_int(0, static_cast<int64_t>(k)))]);
    if (b == 1) gts.resize(6);  // images with different counts (padding in the batch)
  }
}

TEST(RegionLoss, GradientEqualsDarknetDeltasOnRandomInputs) {
  struct Variant {
    const char* name;
    L::RegionLossOptions o;
  };
  std::vector<Variant> variants{{"darknet yolov2-voc", voc_options(4)}, {"other settings", voc_options(4)}};
  {
    L::RegionLossOptions& o = variants[1].o;
    o.rescore = false;
    o.small_box_weight = false;
    o.object_scale = 3, o.noobject_scale = 0.5, o.class_scale = 2, o.coord_scale = 1.5;
    o.thresh = 0.5;
    o.warmup_images = 6400;  // seen 1600: on; 12799: off
    o.warmup_scale = 0.02;
  }
  DarknetStats total;
  uint64_t seed = 100;
  for (const Variant& v : variants)
    for (int64_t seen : {int64_t{1600}, int64_t{12799}, int64_t{12800}, int64_t{50000}}) {
      SCOPED_TRACE(::testing::Message() << v.name << ", seen " << seen);
      Raw raw(2, 4, 13, 13);
      std::vector<std::vector<Gt>> images;
      random_region_case(raw, images, ++seed);
      const Targets t = make_targets(images, 12);
      DarknetStats st;
      const std::vector<double> want = darknet_region_grad(raw, t, seen, v.o, st);
      const Grad got = region_grad(raw, t, seen, v.o);
      total.ignored += st.ignored, total.overwritten += st.overwritten, total.assigned += st.assigned;
      ASSERT_EQ(static_cast<int64_t>(want.size()), got.g.numel());
      const double* g = got.g.data_ptr<double>();
      int bad = 0;
      std::ostringstream first;
      for (std::size_t k = 0; k < want.size(); ++k)
        if (!near(g[k], want[k], 1e-5, 2e-6)) {
          if (bad++ < 5) first << "[" << k << "] got " << g[k] << " want " << want[k] << "; ";
        }
      EXPECT_EQ(bad, 0) << first.str();
    }
  // The cases exercise the ignore rule and the overwrite rule.
  EXPECT_GT(total.ignored, 0);
  EXPECT_GT(total.overwritten, 0);
  EXPECT_EQ(total.assigned, 8 * (9 + 6));
}

// ---------------------------------------------------------------------------------------------

TEST(RegionLoss, InverseFrequencyAlphaHasMeanOneAndHandlesEmptyClasses) {
  // 1/count = 1, 1/2, 1/4 and the empty class the largest of those (1); mean 2.75 / 4.
  const std::vector<double> a = L::inverse_frequency_alpha({1, 2, 4, 0});
  ASSERT_EQ(a.size(), 4u);
  const double m = 2.75 / 4;
  EXPECT_DOUBLE_EQ(a[0], 1 / m);
  EXPECT_DOUBLE_EQ(a[1], 0.5 / m);
  EXPECT_DOUBLE_EQ(a[2], 0.25 / m);
  EXPECT_DOUBLE_EQ(a[3], 1 / m);
  EXPECT_NEAR((a[0] + a[1] + a[2] + a[3]) / 4, 1.0, 1e-12);

  const std::vector<double> b = L::inverse_frequency_alpha({10, 30, 60});
  EXPECT_NEAR((b[0] + b[1] + b[2]) / 3, 1.0, 1e-12);
  EXPECT_NEAR(b[0] / b[1], 3.0, 1e-12);
  EXPECT_NEAR(b[0] / b[2], 6.0, 1e-12);

  EXPECT_EQ(L::inverse_frequency_alpha({0, 0, 0}), std::vector<double>(3, 1.0));
  EXPECT_EQ(L::inverse_frequency_alpha({5, 5}), std::vector<double>(2, 1.0));
}

}  // namespace
