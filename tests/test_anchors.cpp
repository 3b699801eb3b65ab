// Dimension clusters (data/anchors.hpp): the IoU of shapes, k-means++ and Lloyd's k-means with
// 1 - IoU against an independent restatement (scripts/golden_anchors.py), the box shapes a dataset
// gives, and the errors.
#include "yolo2/data/anchors.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "yolo2/error.hpp"

namespace yolo2::data {
namespace {

// scripts/golden_anchors.py's boxes: an LCG (Knuth's MMIX constants) picks one of four base shapes
// and scales each side by 0.5 + m / 1024, m in [0, 1024).
std::vector<BoxShape> golden_boxes() {
  uint64_t state = 20261206;
  auto next_u32 = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 32);
  };
  const double bases[4][2] = {{0.6, 0.9}, {2.0, 1.5}, {4.5, 6.0}, {10.0, 8.0}};
  std::vector<BoxShape> boxes;
  for (int i = 0; i < 400; ++i) {
    const auto& b = bases[next_u32() % 4];
    const double w = b[0] * (0.5 + (next_u32() % 1024) / 1024.0);
    const double h = b[1] * (0.5 + (next_u32() % 1024) / 1024.0);
    boxes.push_back({w, h});
  }
  return boxes;
}

struct Golden {
  int k;
  uint64_t seed;
  int restarts;
  std::vector<double> anchors;  // w, h pairs sorted by area
  double mean_iou;
  int iterations;
};

// clang-format off
const std::vector<Golden> kGolden = {
// BEGIN GOLDEN (scripts/golden_anchors.py)
{5, 0, 1, {0.6415848691239316, 0.9079727564102563, 2.072009154040404, 1.439260771780303, 4.131211577868853, 5.023821721311475, 5.9387826492537314, 7.595732276119403, 11.383231026785714, 8.576171875}, 0.6532649510395404, 3},
{5, 7, 3, {0.6172136579241073, 0.9020350864955357, 1.5641583136792452, 1.3095205630896227, 2.5342482182017543, 1.737047697368421, 4.886426693925234, 6.269677278037383, 10.53844355193662, 8.507784991197184}, 0.6516086441421942, 14},
{3, 1, 2, {1.297195999710648, 1.1514797634548612, 4.738549584740991, 6.088348113738738, 10.42992160744863, 8.490769477739725}, 0.5262497234211865, 6},
{9, 2, 4, {0.58125, 0.6583904655612245, 0.666484958022388, 1.1044484608208953, 1.9532445790816326, 1.0795599489795917, 2.1833256740196076, 1.7561178768382353, 4.5498046875, 4.093577665441177, 3.1910574776785716, 6.711077008928571, 5.719781839622642, 7.8778375589622645, 9.764439174107142, 5.301897321428571, 11.384575076219512, 9.81859756097561}, 0.7273712971182263, 16},
// END GOLDEN
};
// clang-format on

TEST(GoldenAnchors, ClustersEqualTheIndependentRestatement) {
  const std::vector<BoxShape> boxes = golden_boxes();
  for (const Golden& g : kGolden) {
    SCOPED_TRACE("k " + std::to_string(g.k) + " seed " + std::to_string(g.seed));
    const AnchorClusters c = dimension_clusters(boxes, g.k, g.seed, g.restarts);
    ASSERT_EQ(c.anchors.size() * 2, g.anchors.size());
    for (std::size_t a = 0; a < c.anchors.size(); ++a) {
      EXPECT_NEAR(c.anchors[a].w, g.anchors[2 * a], 1e-12);
      EXPECT_NEAR(c.anchors[a].h, g.anchors[2 * a + 1], 1e-12);
    }
    EXPECT_NEAR(c.mean_iou, g.mean_iou, 1e-12);
    EXPECT_EQ(c.iterations, g.iterations);
  }
}

TEST(Anchors, ShapeIouOfCentredBoxes) {
  EXPECT_DOUBLE_EQ(shape_iou({2, 3}, {2, 3}), 1.0);
  // 2x2 inside 4x4: 4 / 16.
  EXPECT_DOUBLE_EQ(shape_iou({2, 2}, {4, 4}), 0.25);
  // 1x4 and 4x1 cross: 1 / (4 + 4 - 1).
  EXPECT_DOUBLE_EQ(shape_iou({1, 4}, {4, 1}), 1.0 / 7.0);
  // {1, 4}: 2 / (4 + 4 - 2) with {2, 2}, better than 4 / 16 with {4, 4}.
  EXPECT_DOUBLE_EQ(mean_best_iou({{2, 2}, {1, 4}}, {{2, 2}, {4, 4}}), (1.0 + 1.0 / 3.0) / 2);
}

TEST(Anchors, RecoversWellSeparatedShapesAndIsAFixedPoint) {
  // Three tight groups: the clusters are their means, and a run started from them does not move.
  std::vector<BoxShape> boxes;
  for (int i = 0; i < 30; ++i) {
    const double e = (i % 5 - 2) * 0.01;
    boxes.push_back({1 + e, 1 - e});
    boxes.push_back({3 + e, 6 - e});
    boxes.push_back({9 + e, 4 + e});
  }
  const AnchorClusters c = dimension_clusters(boxes, 3, 11, 3);
  ASSERT_EQ(c.anchors.size(), 3u);
  EXPECT_NEAR(c.anchors[0].w, 1, 1e-12);
  EXPECT_NEAR(c.anchors[1].w, 3, 1e-12);
  EXPECT_NEAR(c.anchors[1].h, 6, 1e-12);
  EXPECT_NEAR(c.anchors[2].w, 9, 1e-12);
  EXPECT_NEAR(c.anchors[2].h, 4, 1e-12);
  const AnchorClusters again = iou_kmeans(boxes, c.anchors);
  EXPECT_EQ(again.iterations, 1);  // one assignment pass, then nothing changes
  EXPECT_DOUBLE_EQ(again.mean_iou, c.mean_iou);
  // Any other anchors fit these boxes worse.
  EXPECT_LT(mean_best_iou(boxes, {{1.2, 1}, {3, 6}, {9, 4}}), c.mean_iou);
}

TEST(Anchors, SameSeedSameClustersAndEmptyClustersAreRefilled) {
  const std::vector<BoxShape> boxes = golden_boxes();
  const AnchorClusters a = dimension_clusters(boxes, 5, 3, 2), b = dimension_clusters(boxes, 5, 3, 2);
  for (std::size_t i = 0; i < a.anchors.size(); ++i) EXPECT_EQ(a.anchors[i].w, b.anchors[i].w);
  // Start with two centroids far from every box: each empty cluster takes a box, so k clusters
  // come back, each with at least one box (no centroid stays at the unreachable shape).
  const AnchorClusters c = iou_kmeans(boxes, {{0.7, 0.9}, {500, 500}, {600, 1}});
  ASSERT_EQ(c.anchors.size(), 3u);
  for (const auto& anchor : c.anchors) EXPECT_LT(anchor.w * anchor.h, 200.0);
}

TEST(Anchors, BoxShapesAreRelativeSizesTimesTheGrid) {
  Dataset ds;
  ImageRecord r;
  r.width = 200, r.height = 100;
  Object o;
  o.x1 = 10, o.y1 = 5, o.x2 = 110, o.y2 = 30;  // 100 x 25 (x2 - x1, as darknet's voc_label.py)
  r.objects.push_back(o);
  ds.images.push_back(r);
  const std::vector<BoxShape> s = box_shapes(ds, 416);  // a 13 x 13 grid
  ASSERT_EQ(s.size(), 1u);
  EXPECT_DOUBLE_EQ(s[0].w, 0.5 * 13);
  EXPECT_DOUBLE_EQ(s[0].h, 0.25 * 13);
}

TEST(Anchors, ErrorsNameTheProblem) {
  const std::vector<BoxShape> same(10, BoxShape{1, 2});
  try {
    dimension_clusters(same, 2, 0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("only 1 distinct shapes"), std::string::npos) << e.what();
  }
  EXPECT_THROW(dimension_clusters(golden_boxes(), 0, 0), Error);
  EXPECT_THROW(dimension_clusters(golden_boxes(), 3, 0, 0), Error);
  EXPECT_THROW(kmeans_pp_seeds({}, 1, 0), Error);
}

}  // namespace
}  // namespace yolo2::data
