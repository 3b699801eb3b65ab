// The region box coder and the target assignment against hand computations written here from
// darknet's region_layer.c (get_region_box, delta_region_box, bias_match; yolov2-reference.md §2.1-§2.2).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "yolo2/loss/region_targets.hpp"
#include "yolo2/ops/boxes.hpp"
#include "yolo2/ops/region_coder.hpp"

namespace yolo2 {
namespace {

const std::vector<double> kAnchors{1.3221,  1.73145, 3.19275, 4.00944, 5.05587,
                                   8.09892, 9.47112, 4.84053, 11.2364, 10.0071};

// darknet's box_iou on centre-size boxes, in double, written out term by term.
double darknet_iou(double ax, double ay, double aw, double ah, double bx, double by, double bw, double bh) {
  const auto overlap = [](double x1, double w1, double x2, double w2) {
    return std::min(x1 + w1 / 2, x2 + w2 / 2) - std::max(x1 - w1 / 2, x2 - w2 / 2);
  };
  const double w = overlap(ax, aw, bx, bw), h = overlap(ay, ah, by, bh);
  const double inter = w < 0 || h < 0 ? 0 : w * h;
  return inter / (aw * ah + bw * bh - inter);
}

TEST(RegionCoder, ShapeIouIsTheIouOfCentredBoxes) {
  EXPECT_FLOAT_EQ(ops::shape_iou(2, 4, 4, 2), static_cast<float>(darknet_iou(0, 0, 2, 4, 0, 0, 4, 2)));
  EXPECT_FLOAT_EQ(ops::shape_iou(1, 1, 2, 2), 0.25f);
  EXPECT_FLOAT_EQ(ops::shape_iou(3, 5, 3, 5), 1.f);
}

TEST(RegionCoder, ElementwiseCxcywhIouMatchesDarknetAndTheCornerForm) {
  const std::vector<float> a{0.5f, 0.5f, 0.4f, 0.2f, 0.1f, 0.9f, 0.05f, 0.1f, 0.3f, 0.3f, 0.2f, 0.2f};
  const std::vector<float> b{0.6f, 0.55f, 0.3f, 0.3f, 0.5f, 0.5f, 0.2f, 0.2f, 0.31f, 0.29f, 0.2f, 0.22f};
  const at::Tensor ta = at::tensor(a).view({3, 4}), tb = at::tensor(b).view({3, 4});
  const at::Tensor iou = ops::elementwise_iou_cxcywh(ta, tb);
  const at::Tensor corner = ops::elementwise_iou(ops::cxcywh_to_xyxy(ta), ops::cxcywh_to_xyxy(tb));
  for (int k = 0; k < 3; ++k) {
    const float* p = a.data() + 4 * k;
    const float* q = b.data() + 4 * k;
    EXPECT_NEAR(iou[k].item<float>(), darknet_iou(p[0], p[1], p[2], p[3], q[0], q[1], q[2], q[3]), 1e-6) << k;
    EXPECT_NEAR(corner[k].item<float>(), iou[k].item<float>(), 1e-6) << k;
  }
  EXPECT_EQ(iou[1].item<float>(), 0.f);  // disjoint
}

TEST(RegionCoder, EncodePicksTheCellAndTheAnchorOfBestShapeAndDarknetTargets) {
  // A box centred at (0.53, 0.27) of size 0.3 x 0.35 on a 13 x 13 grid.
  const ops::EncodedBox e = ops::encode_box(0.53f, 0.27f, 0.3f, 0.35f, 13, 13, kAnchors);
  EXPECT_EQ(e.i, 6);  // floor(0.53 * 13) = floor(6.89)
  EXPECT_EQ(e.j, 3);  // floor(0.27 * 13) = floor(3.51)
  int best = 0;
  double best_iou = -1;
  for (int n = 0; n < 5; ++n) {
    const double iou = darknet_iou(0, 0, kAnchors[2 * n] / 13, kAnchors[2 * n + 1] / 13, 0, 0, 0.3, 0.35);
    if (iou > best_iou) best_iou = iou, best = n;
  }
  EXPECT_EQ(e.anchor, best);
  EXPECT_NEAR(e.tx, 0.53 * 13 - 6, 1e-5);
  EXPECT_NEAR(e.ty, 0.27 * 13 - 3, 1e-5);
  EXPECT_NEAR(e.tw, std::log(0.3 * 13 / kAnchors[2 * best]), 1e-5);
  EXPECT_NEAR(e.th, std::log(0.35 * 13 / kAnchors[2 * best + 1]), 1e-5);
}

TEST(RegionCoder, DecodingTheEncodedTargetsGivesTheBoxBack) {
  const int64_t gh = 7, gw = 9, c = 3;
  const float cx = 0.61f, cy = 0.44f, w = 0.2f, h = 0.5f;
  const ops::EncodedBox e = ops::encode_box(cx, cy, w, h, gw, gh, kAnchors);
  at::Tensor raw = at::zeros({1, 5 * (5 + c), gh, gw});
  const int64_t base = e.anchor * (5 + c);
  raw[0][base + 0][e.j][e.i] = std::log(e.tx / (1 - e.tx));  // logit: sigmoid(t_x) = tx
  raw[0][base + 1][e.j][e.i] = std::log(e.ty / (1 - e.ty));
  raw[0][base + 2][e.j][e.i] = e.tw;
  raw[0][base + 3][e.j][e.i] = e.th;
  const ops::RegionParts p = ops::split_region(raw, 5, c);
  const at::Tensor boxes = ops::decode_boxes(p, kAnchors);  // [1, A, H, W, 4]
  ASSERT_EQ(boxes.sizes(), (std::vector<int64_t>{1, 5, gh, gw, 4}));
  const at::Tensor got = boxes[0][e.anchor][e.j][e.i];
  EXPECT_NEAR(got[0].item<float>(), cx, 1e-5);
  EXPECT_NEAR(got[1].item<float>(), cy, 1e-5);
  EXPECT_NEAR(got[2].item<float>(), w, 1e-5);
  EXPECT_NEAR(got[3].item<float>(), h, 1e-5);
  // A zero output sits at the cell centre with the anchor's shape.
  const at::Tensor other = boxes[0][1][2][3];
  EXPECT_NEAR(other[0].item<float>(), 3.5 / gw, 1e-6);
  EXPECT_NEAR(other[1].item<float>(), 2.5 / gh, 1e-6);
  EXPECT_NEAR(other[2].item<float>(), kAnchors[2] / gw, 1e-6);
  EXPECT_NEAR(other[3].item<float>(), kAnchors[3] / gh, 1e-6);
  EXPECT_THROW(ops::split_region(raw, 5, c + 1), c10::Error);
}

TEST(RegionTargets, AssignmentIsOnePerCellAndAnchorTheLaterWinsAndEveryGroundTruthIsCounted) {
  loss::TargetOptions o;
  o.anchors = kAnchors;
  o.num_classes = 4;
  // Image 0: two boxes of one shape in one cell (the second wins), one zero-width box (skipped);
  // image 1: one box, then a row past its count.
  const at::Tensor boxes =
      at::tensor(std::vector<float>{0.40f, 0.40f, 0.60f, 0.60f, 0.41f, 0.41f, 0.61f, 0.61f, 0.2f, 0.2f, 0.2f, 0.5f,
                                    0.1f,  0.1f,  0.3f,  0.4f,  0.5f,  0.5f,  0.9f,  0.9f,  0.0f, 0.0f, 0.0f, 0.0f})
          .view({2, 3, 4});
  const at::Tensor labels = at::tensor(std::vector<int64_t>{1, 2, 3, 0, 1, -1}).view({2, 3});
  const at::Tensor counts = at::tensor(std::vector<int64_t>{3, 1});
  const loss::RegionTargets t = loss::assign_targets(boxes, labels, counts, 13, 13, o);
  EXPECT_EQ(t.all_flat.numel(), 3);  // the zero-width box and the row past the count are not ground truths
  ASSERT_EQ(t.flat.numel(), 2);
  EXPECT_EQ(t.labels[0].item<int64_t>(), 2);  // the later box on the shared (cell, anchor)
  EXPECT_EQ(t.labels[1].item<int64_t>(), 0);
  EXPECT_NEAR(t.weight[0].item<float>(), 2 - 0.2 * 0.2, 1e-6);
  EXPECT_TRUE(t.image_valid[0][0].item<bool>() && t.image_valid[0][1].item<bool>());
  EXPECT_FALSE(t.image_valid[0][2].item<bool>());
  EXPECT_FALSE(t.image_valid[1][1].item<bool>());
  const at::Tensor bad = at::tensor(std::vector<int64_t>{4, 0, 0, 0, 0, 0}).view({2, 3});
  EXPECT_THROW(loss::assign_targets(boxes, bad, counts, 13, 13, o), c10::Error);
  o.max_boxes = 1;
  EXPECT_EQ(loss::assign_targets(boxes, labels, counts, 13, 13, o).all_flat.numel(), 2);
  // The GPU's transfer (two packed buffers, cut back into the ten tensors), run here to the CPU: every
  // tensor comes back with its shape, type and values.
  const loss::RegionTargets p = t.to_packed(at::kCPU);
  const std::vector<std::pair<at::Tensor, at::Tensor>> pairs{{t.flat, p.flat},
                                                             {t.labels, p.labels},
                                                             {t.coords, p.coords},
                                                             {t.weight, p.weight},
                                                             {t.boxes, p.boxes},
                                                             {t.all_flat, p.all_flat},
                                                             {t.all_labels, p.all_labels},
                                                             {t.all_boxes, p.all_boxes},
                                                             {t.image_boxes, p.image_boxes},
                                                             {t.image_valid, p.image_valid}};
  for (std::size_t k = 0; k < pairs.size(); ++k) {
    EXPECT_EQ(pairs[k].second.scalar_type(), pairs[k].first.scalar_type()) << k;
    EXPECT_EQ(pairs[k].second.sizes(), pairs[k].first.sizes()) << k;
    EXPECT_TRUE(at::equal(pairs[k].second, pairs[k].first)) << k;
  }
}

}  // namespace
}  // namespace yolo2
