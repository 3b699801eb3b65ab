// COCO's evaluation (eval/coco_eval.hpp) on cases small enough to work out by hand; the full
// comparison with pycocotools is tests/coco_eval_test.py (ctest CocoEval.EqualsPycocotools).
#include "yolo2/eval/coco_eval.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "yolo2/error.hpp"

namespace yolo2::eval {
namespace {

CocoGroundTruth gt(int image, int label, double x, double y, double w, double h, bool crowd = false) {
  return {image, label, x, y, w, h, w * h, crowd, crowd};
}
CocoDetection det(int image, int label, double x, double y, double w, double h, double score) {
  return {image, label, x, y, w, h, score};
}

TEST(CocoEval, APerfectDetectionOfASmallObject) {
  const CocoResult r = evaluate_coco({gt(0, 0, 0, 0, 10, 10)}, {det(0, 0, 0, 0, 10, 10, 0.9)}, 1, 1);
  ASSERT_EQ(r.stats.size(), 12u);
  EXPECT_DOUBLE_EQ(r.stats[0], 1.0);   // AP
  EXPECT_DOUBLE_EQ(r.stats[1], 1.0);   // AP50
  EXPECT_DOUBLE_EQ(r.stats[3], 1.0);   // AP small: area 100 < 32^2
  EXPECT_DOUBLE_EQ(r.stats[4], -1.0);  // no medium object: pycocotools' -1
  EXPECT_DOUBLE_EQ(r.stats[5], -1.0);
  EXPECT_DOUBLE_EQ(r.stats[8], 1.0);  // AR100
  EXPECT_DOUBLE_EQ(r.per_class_ap[0], 1.0);
}

TEST(CocoEval, IouBelowAThresholdCountsOnlyAtTheLowerOnes) {
  // IoU 0.8 (a 10 x 8 detection inside a 10 x 10 box): a hit at thresholds 0.50 .. 0.80 (7 of 10).
  const CocoResult r = evaluate_coco({gt(0, 0, 0, 0, 10, 10)}, {det(0, 0, 0, 0, 10, 8, 0.9)}, 1, 1);
  EXPECT_DOUBLE_EQ(r.stats[1], 1.0);
  EXPECT_DOUBLE_EQ(r.stats[2], 1.0);  // AP75
  EXPECT_NEAR(r.stats[0], 0.7, 1e-12);
  EXPECT_NEAR(r.stats[8], 0.7, 1e-12);
}

TEST(CocoEval, CrowdBoxesSwallowDetectionsAndAClassWithoutGroundTruthIsLeftOut) {
  // Three detections inside a crowd box are ignored (intersection over the detection's area is 1);
  // the one on the real object is a hit; class 1 has no ground truth at all.
  const std::vector<CocoGroundTruth> g{gt(0, 0, 0, 0, 100, 100, true), gt(0, 0, 200, 200, 40, 40)};
  const std::vector<CocoDetection> d{det(0, 0, 10, 10, 20, 20, 0.95), det(0, 0, 50, 50, 20, 20, 0.9),
                                     det(0, 0, 5, 60, 30, 30, 0.85), det(0, 0, 200, 200, 40, 40, 0.5),
                                     det(0, 1, 0, 0, 5, 5, 0.99)};
  const CocoResult r = evaluate_coco(g, d, 1, 2);
  EXPECT_DOUBLE_EQ(r.per_class_ap[0], 1.0);
  EXPECT_DOUBLE_EQ(r.per_class_ap[1], -1.0);
  EXPECT_DOUBLE_EQ(r.stats[0], 1.0);
  EXPECT_EQ(r.per_class_gt[0], 1);
}

TEST(CocoEval, ALowerScoredDuplicateIsAFalsePositiveAfterTheHit) {
  // Precision 1 at recall 1 comes first, so the interpolated AP stays 1; a higher-scored false
  // positive before the hit halves it.
  const CocoResult dup =
      evaluate_coco({gt(0, 0, 0, 0, 50, 50)}, {det(0, 0, 0, 0, 50, 50, 0.9), det(0, 0, 0, 0, 50, 50, 0.8)}, 1, 1);
  EXPECT_DOUBLE_EQ(dup.stats[0], 1.0);
  const CocoResult fp =
      evaluate_coco({gt(0, 0, 0, 0, 50, 50)}, {det(0, 0, 300, 300, 50, 50, 0.9), det(0, 0, 0, 0, 50, 50, 0.8)}, 1, 1);
  EXPECT_DOUBLE_EQ(fp.stats[0], 0.5);
}

TEST(CocoEval, OnlyTheBestDetectionsPerImageCountForAR1) {
  // Two objects, two hits: with one detection per image only the better-scored hit counts.
  const CocoResult r = evaluate_coco({gt(0, 0, 0, 0, 50, 50), gt(0, 0, 100, 100, 50, 50)},
                                     {det(0, 0, 0, 0, 50, 50, 0.9), det(0, 0, 100, 100, 50, 50, 0.8)}, 1, 1);
  EXPECT_DOUBLE_EQ(r.stats[6], 0.5);  // AR_1
  EXPECT_DOUBLE_EQ(r.stats[7], 1.0);  // AR_10
}

TEST(CocoEval, OutOfRangeInputIsNamed) {
  EXPECT_THROW(evaluate_coco({gt(2, 0, 0, 0, 1, 1)}, {}, 1, 1), Error);
  EXPECT_THROW(evaluate_coco({}, {det(0, 3, 0, 0, 1, 1, 0.5)}, 1, 1), Error);
}

}  // namespace
}  // namespace yolo2::eval
