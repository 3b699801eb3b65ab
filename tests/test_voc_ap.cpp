// VOC AP scoring (yolov2-reference.md §6.1): hand-computed cases for each matching rule, and a
// randomized case checked against an independent float64 Python restatement of voc_eval.py.
// Also the PR-curve report (the line-plot renderer it draws with: test_plot.cpp).
#include "yolo2/eval/voc_ap.hpp"

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "yolo2/error.hpp"
#include "yolo2/eval/report.hpp"
#include "yolo2/util/plot.hpp"

using yolo2::testing::count_pixels_of;

namespace yolo2::eval {
namespace {

using GroundTruth = std::vector<std::vector<GroundTruthBox>>;

GroundTruthBox gt_box(int label, float x1, float y1, float x2, float y2, bool difficult = false) {
  return GroundTruthBox{label, PixelBox{x1, y1, x2, y2}, difficult};
}

Detection det(int image, int label, float score, float x1, float y1, float x2, float y2) {
  return Detection{image, label, score, PixelBox{x1, y1, x2, y2}};
}

VocEvalOptions with_metric(ApMetric metric, bool inclusive = true) {
  VocEvalOptions options;
  options.metric = metric;
  options.inclusive_threshold = inclusive;
  return options;
}

const std::vector<std::string> kOneClass = {"dog"};
const std::vector<std::string> kTwoClasses = {"cat", "dog"};

// Four well separated 10x10 GTs ('+1' widths) of class 0 in one image.
GroundTruth four_separate_objects() {
  return {{gt_box(0, 0, 0, 9, 9), gt_box(0, 100, 0, 109, 9), gt_box(0, 200, 0, 209, 9), gt_box(0, 300, 0, 309, 9)}};
}

TEST(VocIou, UsesInclusivePixelCorners) {
  // 10x10 and 10x5 pixel boxes sharing the top half: 50 / (100 + 50 - 50) = 0.5 exactly.
  EXPECT_EQ(voc_iou(PixelBox{0, 0, 9, 9}, PixelBox{0, 0, 9, 4}), 0.5);
  // A single pixel has area 1 under the +1 convention, so it has IoU 1 with itself.
  EXPECT_EQ(voc_iou(PixelBox{3, 3, 3, 3}, PixelBox{3, 3, 3, 3}), 1.0);
  // Disjoint boxes: no intersection.
  EXPECT_EQ(voc_iou(PixelBox{0, 0, 9, 9}, PixelBox{20, 0, 29, 9}), 0.0);
  // Adjacent columns (x2 = 9, x1 = 10) do not share a pixel.
  EXPECT_EQ(voc_iou(PixelBox{0, 0, 9, 9}, PixelBox{10, 0, 19, 9}), 0.0);
}

TEST(EvaluateVoc, PerfectDetectionsGiveApOne) {
  const GroundTruth gt = four_separate_objects();
  std::vector<Detection> dets;
  for (int k = 0; k < 4; ++k) {
    const float x = 100.f * static_cast<float>(k);
    dets.push_back(det(0, 0, 0.9f - 0.1f * static_cast<float>(k), x, 0, x + 9, 9));
  }
  for (ApMetric metric : {ApMetric::Voc07, ApMetric::Voc12}) {
    const MapResult r = evaluate_voc(gt, dets, kOneClass, with_metric(metric));
    EXPECT_DOUBLE_EQ(r.per_class[0].ap, 1.0) << to_string(metric);
    EXPECT_DOUBLE_EQ(r.map, 1.0);
    EXPECT_EQ(r.per_class[0].true_positives, 4);
    EXPECT_EQ(r.per_class[0].false_positives, 0);
    EXPECT_EQ(r.per_class[0].num_gt, 4);
    EXPECT_EQ(r.evaluated_classes, 1);
  }
}

TEST(EvaluateVoc, NoDetectionsGiveApZero) {
  for (ApMetric metric : {ApMetric::Voc07, ApMetric::Voc12}) {
    const MapResult r = evaluate_voc(four_separate_objects(), {}, kOneClass, with_metric(metric));
    EXPECT_EQ(r.per_class[0].ap, 0.0) << to_string(metric);
    EXPECT_EQ(r.map, 0.0);
    EXPECT_TRUE(r.per_class[0].recall.empty());
    EXPECT_EQ(r.per_class[0].num_detections, 0);
  }
}

// Ranked TP, FP, TP, FP, TP against 4 GTs (the fourth never found):
//   cum tp = 1 1 2 2 3, cum fp = 0 1 1 2 2
//   recall    = .25 .25 .5  .5 .75
//   precision = 1   .5  2/3 .5 .6
// VOC07: t = 0, .1, .2 -> max prec = 1; t = .3(0000000000000004), .4, .5 -> 2/3;
//        t = .6(000000000000001), .7(000000000000001) -> .6; t = .8, .9, 1 -> 0.
//        AP = (3 * 1 + 3 * 2/3 + 2 * .6) / 11 = 6.2 / 11.
// VOC12: envelope 1, 1, 2/3, 2/3, .6, .6; recall steps of .25 at .25, .5, .75 (and to 1 at 0):
//        AP = .25 * (1 + 2/3 + .6).
std::vector<Detection> known_curve_detections() {
  return {det(0, 0, 0.9f, 0, 0, 9, 9), det(0, 0, 0.8f, 50, 50, 59, 59), det(0, 0, 0.7f, 100, 0, 109, 9),
          det(0, 0, 0.6f, 50, 150, 59, 159), det(0, 0, 0.5f, 200, 0, 209, 9)};
}

TEST(EvaluateVoc, KnownPrCurveMatchesHandComputedAp) {
  const GroundTruth gt = four_separate_objects();
  const MapResult r07 = evaluate_voc(gt, known_curve_detections(), kOneClass, with_metric(ApMetric::Voc07));
  const ClassResult& c = r07.per_class[0];
  const std::vector<double> recall = {0.25, 0.25, 0.5, 0.5, 0.75};
  const std::vector<double> precision = {1.0, 0.5, 2.0 / 3.0, 0.5, 0.6};
  ASSERT_EQ(c.recall.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_DOUBLE_EQ(c.recall[i], recall[i]) << i;
    EXPECT_DOUBLE_EQ(c.precision[i], precision[i]) << i;
  }
  EXPECT_EQ(c.true_positives, 3);
  EXPECT_EQ(c.false_positives, 2);
  EXPECT_NEAR(c.ap, 6.2 / 11.0, 1e-12);

  const MapResult r12 = evaluate_voc(gt, known_curve_detections(), kOneClass, with_metric(ApMetric::Voc12));
  EXPECT_NEAR(r12.per_class[0].ap, 0.25 * (1.0 + 2.0 / 3.0 + 0.6), 1e-12);
}

TEST(EvaluateVoc, InputOrderOfDetectionsDoesNotMatterWithoutTies) {
  std::vector<Detection> dets = known_curve_detections();
  std::vector<Detection> reversed(dets.rbegin(), dets.rend());
  const MapResult a = evaluate_voc(four_separate_objects(), dets, kOneClass);
  const MapResult b = evaluate_voc(four_separate_objects(), reversed, kOneClass);
  EXPECT_EQ(a.per_class[0].ap, b.per_class[0].ap);
  EXPECT_EQ(a.per_class[0].precision, b.per_class[0].precision);
}

TEST(EvaluateVoc, SecondDetectionOfTheSameObjectIsAFalsePositive) {
  const GroundTruth gt = {{gt_box(0, 0, 0, 9, 9)}};
  const std::vector<Detection> dets = {det(0, 0, 0.9f, 0, 0, 9, 9), det(0, 0, 0.8f, 0, 0, 9, 8)};
  const MapResult r = evaluate_voc(gt, dets, kOneClass, with_metric(ApMetric::Voc12));
  const ClassResult& c = r.per_class[0];
  EXPECT_EQ(c.true_positives, 1);
  EXPECT_EQ(c.false_positives, 1);
  EXPECT_EQ(c.precision, (std::vector<double>{1.0, 0.5}));
  EXPECT_EQ(c.recall, (std::vector<double>{1.0, 1.0}));
  EXPECT_DOUBLE_EQ(c.ap, 1.0);  // the duplicate comes after full recall
}

TEST(EvaluateVoc, DetectionOfADifficultObjectIsIgnoredButKeepsItsPoint) {
  // GT 0 is difficult, GT 1 is not. The top detection hits the difficult one: tp = fp = 0 there,
  // so voc_eval's arrays still hold a point with precision 0 / max(0, eps) = 0 and recall 0.
  const GroundTruth gt = {{gt_box(0, 0, 0, 9, 9, true), gt_box(0, 100, 0, 109, 9)}};
  const std::vector<Detection> dets = {det(0, 0, 0.9f, 0, 0, 9, 9), det(0, 0, 0.8f, 100, 0, 109, 9)};
  for (ApMetric metric : {ApMetric::Voc07, ApMetric::Voc12}) {
    const MapResult r = evaluate_voc(gt, dets, kOneClass, with_metric(metric));
    const ClassResult& c = r.per_class[0];
    EXPECT_EQ(c.num_gt, 1);
    EXPECT_EQ(c.num_difficult, 1);
    EXPECT_EQ(c.ignored, 1);
    EXPECT_EQ(c.true_positives, 1);
    EXPECT_EQ(c.false_positives, 0);
    EXPECT_EQ(c.recall, (std::vector<double>{0.0, 1.0}));
    EXPECT_EQ(c.precision, (std::vector<double>{0.0, 1.0}));
    // VOC07: every threshold reaches the second point (precision 1). VOC12: the envelope is 1.
    EXPECT_DOUBLE_EQ(c.ap, 1.0) << to_string(metric);
  }
}

TEST(EvaluateVoc, DifficultBestMatchWinsOverAnOverlappingNormalObject) {
  // The detection overlaps both GTs, the difficult one more: argmax picks it, so it is ignored
  // even though the normal GT alone would have made it a TP.
  const GroundTruth gt = {{gt_box(0, 0, 0, 9, 9, true), gt_box(0, 1, 0, 10, 9)}};
  const std::vector<Detection> dets = {det(0, 0, 0.9f, 0, 0, 9, 9)};
  const MapResult r = evaluate_voc(gt, dets, kOneClass);
  EXPECT_EQ(r.per_class[0].ignored, 1);
  EXPECT_EQ(r.per_class[0].true_positives, 0);
  EXPECT_EQ(r.per_class[0].false_positives, 0);
  EXPECT_EQ(r.per_class[0].ap, 0.0);
}

TEST(EvaluateVoc, EqualIouPicksTheFirstGroundTruthInAnnotationOrder) {
  // A detection centred between two GTs overlaps both equally: GTs [0..9] and [2..11],
  // detection [1..10] -> 90 / 110 each. np.argmax, and so the evaluator, take the first.
  const PixelBox a{0, 0, 9, 9}, b{2, 0, 11, 9}, d{1, 0, 10, 9};
  ASSERT_EQ(voc_iou(d, a), voc_iou(d, b));
  const std::vector<Detection> dets = {det(0, 0, 0.9f, d.x1, d.y1, d.x2, d.y2)};
  // Difficult GT first: it wins the tie and the detection is ignored.
  const GroundTruth difficult_first = {{gt_box(0, a.x1, a.y1, a.x2, a.y2, true), gt_box(0, b.x1, b.y1, b.x2, b.y2)}};
  EXPECT_EQ(evaluate_voc(difficult_first, dets, kOneClass).per_class[0].ignored, 1);
  // Normal GT first: it wins the tie and the detection is a TP.
  const GroundTruth normal_first = {{gt_box(0, b.x1, b.y1, b.x2, b.y2), gt_box(0, a.x1, a.y1, a.x2, a.y2, true)}};
  EXPECT_EQ(evaluate_voc(normal_first, dets, kOneClass).per_class[0].true_positives, 1);
}

TEST(EvaluateVoc, BestGroundTruthAlreadyTakenMeansFalsePositiveEvenIfAnotherOverlaps) {
  // GT A [0..9] and GT B [2..11]. Both detections are exactly A. The second one overlaps B with
  // IoU 80 / 120 = 2/3 > 0.5, but its best GT is A (IoU 1), already taken: FP (jmax rule).
  const GroundTruth gt = {{gt_box(0, 0, 0, 9, 9), gt_box(0, 2, 0, 11, 9)}};
  const std::vector<Detection> dets = {det(0, 0, 0.9f, 0, 0, 9, 9), det(0, 0, 0.8f, 0, 0, 9, 9)};
  ASSERT_GT(voc_iou(PixelBox{0, 0, 9, 9}, PixelBox{2, 0, 11, 9}), 0.5);
  const MapResult r = evaluate_voc(gt, dets, kOneClass, with_metric(ApMetric::Voc12));
  const ClassResult& c = r.per_class[0];
  EXPECT_EQ(c.true_positives, 1);
  EXPECT_EQ(c.false_positives, 1);
  EXPECT_EQ(c.recall, (std::vector<double>{0.5, 0.5}));
  EXPECT_DOUBLE_EQ(c.ap, 0.5);  // recall .5 at precision 1, never more
}

TEST(EvaluateVoc, IouExactlyAtThresholdCountsOnlyWhenInclusive) {
  const GroundTruth gt = {{gt_box(0, 0, 0, 9, 9)}};
  const std::vector<Detection> dets = {det(0, 0, 0.9f, 0, 0, 9, 4)};  // IoU exactly 0.5
  const MapResult inclusive = evaluate_voc(gt, dets, kOneClass, with_metric(ApMetric::Voc12, true));
  EXPECT_EQ(inclusive.per_class[0].true_positives, 1);
  EXPECT_DOUBLE_EQ(inclusive.per_class[0].ap, 1.0);
  EXPECT_TRUE(inclusive.inclusive_threshold);
  const MapResult strict = evaluate_voc(gt, dets, kOneClass, with_metric(ApMetric::Voc12, false));
  EXPECT_EQ(strict.per_class[0].true_positives, 0);
  EXPECT_EQ(strict.per_class[0].false_positives, 1);
  EXPECT_EQ(strict.per_class[0].ap, 0.0);
}

TEST(EvaluateVoc, IouThresholdIsConfigurable) {
  const GroundTruth gt = {{gt_box(0, 0, 0, 9, 9)}};
  const std::vector<Detection> dets = {det(0, 0, 0.9f, 0, 0, 9, 6)};  // IoU 0.7
  VocEvalOptions options;
  options.iou_threshold = 0.75;
  EXPECT_EQ(evaluate_voc(gt, dets, kOneClass, options).per_class[0].true_positives, 0);
  options.iou_threshold = 0.7;
  EXPECT_EQ(evaluate_voc(gt, dets, kOneClass, options).per_class[0].true_positives, 1);
  EXPECT_EQ(evaluate_voc(gt, dets, kOneClass, options).iou_threshold, 0.7);
}

TEST(EvaluateVoc, EqualScoresKeepTheirInputOrder) {
  // One GT, two detections with the same score: one hits it, one misses. The stable ranking
  // makes the input order decide, hence the AP.
  const GroundTruth gt = {{gt_box(0, 0, 0, 9, 9)}};
  const Detection hit = det(0, 0, 0.5f, 0, 0, 9, 9), miss = det(0, 0, 0.5f, 50, 50, 59, 59);
  const MapResult hit_first = evaluate_voc(gt, {hit, miss}, kOneClass, with_metric(ApMetric::Voc12));
  EXPECT_EQ(hit_first.per_class[0].precision, (std::vector<double>{1.0, 0.5}));
  EXPECT_DOUBLE_EQ(hit_first.per_class[0].ap, 1.0);
  const MapResult miss_first = evaluate_voc(gt, {miss, hit}, kOneClass, with_metric(ApMetric::Voc12));
  EXPECT_EQ(miss_first.per_class[0].precision, (std::vector<double>{0.0, 0.5}));
  EXPECT_DOUBLE_EQ(miss_first.per_class[0].ap, 0.5);
}

TEST(EvaluateVoc, ClassWithoutGroundTruthHasNanApAndStaysOutOfTheMean) {
  // "cat" (0) is detected perfectly; "dog" (1) has only a difficult GT and one detection.
  const GroundTruth gt = {{gt_box(0, 0, 0, 9, 9), gt_box(1, 50, 50, 59, 59, true)}, {gt_box(0, 0, 0, 19, 19)}};
  const std::vector<Detection> dets = {det(0, 0, 0.9f, 0, 0, 9, 9), det(1, 0, 0.8f, 0, 0, 19, 19),
                                       det(1, 1, 0.7f, 0, 0, 9, 9)};
  const MapResult r = evaluate_voc(gt, dets, kTwoClasses);
  EXPECT_DOUBLE_EQ(r.per_class[0].ap, 1.0);
  EXPECT_TRUE(std::isnan(r.per_class[1].ap));
  EXPECT_EQ(r.per_class[1].num_gt, 0);
  EXPECT_EQ(r.per_class[1].num_difficult, 1);
  EXPECT_EQ(r.per_class[1].false_positives, 1);
  ASSERT_EQ(r.per_class[1].recall.size(), 1u);
  EXPECT_TRUE(std::isnan(r.per_class[1].recall[0]));
  EXPECT_DOUBLE_EQ(r.map, 1.0);  // not (1 + 0) / 2
  EXPECT_EQ(r.evaluated_classes, 1);
  EXPECT_EQ(r.images, 2);
  EXPECT_EQ(r.detections, 3);
}

TEST(EvaluateVoc, MapIsNanWhenNoClassHasGroundTruth) {
  const MapResult r = evaluate_voc({{}, {}}, {det(0, 0, 0.5f, 0, 0, 9, 9)}, kTwoClasses);
  EXPECT_TRUE(std::isnan(r.map));
  EXPECT_EQ(r.evaluated_classes, 0);
}

TEST(EvaluateVoc, MapAveragesClassesAndDetectionsOnlyMatchTheirOwnClass) {
  // cat: found (AP 1). dog: its only detection sits on the cat box, so it misses (AP 0).
  const GroundTruth gt = {{gt_box(0, 0, 0, 9, 9), gt_box(1, 100, 100, 119, 119)}};
  const std::vector<Detection> dets = {det(0, 0, 0.9f, 0, 0, 9, 9), det(0, 1, 0.8f, 0, 0, 9, 9)};
  for (ApMetric metric : {ApMetric::Voc07, ApMetric::Voc12}) {
    const MapResult r = evaluate_voc(gt, dets, kTwoClasses, with_metric(metric));
    EXPECT_DOUBLE_EQ(r.per_class[0].ap, 1.0);
    EXPECT_DOUBLE_EQ(r.per_class[1].ap, 0.0);
    EXPECT_DOUBLE_EQ(r.map, 0.5);
    EXPECT_EQ(r.per_class[1].name, "dog");
  }
}

TEST(EvaluateVoc, DetectionsOnlyMatchObjectsOfTheirOwnImage) {
  const GroundTruth gt = {{gt_box(0, 0, 0, 9, 9)}, {}};
  const MapResult r = evaluate_voc(gt, {det(1, 0, 0.9f, 0, 0, 9, 9)}, kOneClass);
  EXPECT_EQ(r.per_class[0].false_positives, 1);
  EXPECT_EQ(r.per_class[0].ap, 0.0);
}

TEST(EvaluateVoc, BadIndicesAreErrorsNamingTheDetection) {
  const GroundTruth gt = {{gt_box(0, 0, 0, 9, 9)}};
  const auto message_of = [&](const std::vector<Detection>& dets, const GroundTruth& g) {
    try {
      evaluate_voc(g, dets, kOneClass);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const Detection ok = det(0, 0, 0.9f, 0, 0, 9, 9);
  std::string m = message_of({ok, det(5, 0, 0.5f, 0, 0, 9, 9)}, gt);
  EXPECT_NE(m.find("detection 1"), std::string::npos) << m;
  EXPECT_NE(m.find("image 5"), std::string::npos) << m;
  m = message_of({ok, ok, det(0, 3, 0.5f, 0, 0, 9, 9)}, gt);
  EXPECT_NE(m.find("detection 2"), std::string::npos) << m;
  EXPECT_NE(m.find("label 3"), std::string::npos) << m;
  m = message_of({det(-1, 0, 0.5f, 0, 0, 9, 9)}, gt);
  EXPECT_NE(m.find("image -1"), std::string::npos) << m;
  m = message_of({det(0, 0, std::numeric_limits<float>::quiet_NaN(), 0, 0, 9, 9)}, gt);
  EXPECT_NE(m.find("NaN"), std::string::npos) << m;
  m = message_of({ok}, {{gt_box(0, 0, 0, 9, 9), gt_box(7, 0, 0, 9, 9)}});
  EXPECT_NE(m.find("ground-truth box 1 of image 0"), std::string::npos) << m;
}

TEST(AveragePrecision, ElevenPointThresholdsAreNumpyArangeValues) {
  // numpy's arange(0, 1.1, 0.1)[3] is 0.30000000000000004 > 0.3, so a recall of exactly 0.3
  // reaches only t = 0, .1, .2: 3/11, not 4/11. Likewise 0.6 and 0.7 miss 0.6000000000000001
  // and 0.7000000000000001, while 0.4, 0.5, 0.8, 0.9 and 1.0 are reached exactly.
  EXPECT_DOUBLE_EQ(average_precision({0.3}, {1.0}, ApMetric::Voc07), 3.0 / 11.0);
  EXPECT_DOUBLE_EQ(average_precision({0.6}, {1.0}, ApMetric::Voc07), 6.0 / 11.0);
  EXPECT_DOUBLE_EQ(average_precision({0.7}, {1.0}, ApMetric::Voc07), 7.0 / 11.0);
  EXPECT_DOUBLE_EQ(average_precision({0.4}, {1.0}, ApMetric::Voc07), 5.0 / 11.0);
  EXPECT_DOUBLE_EQ(average_precision({1.0}, {1.0}, ApMetric::Voc07), 1.0);
  // The same through the matching: 3 of 10 objects found gives recall 3/10 == 0.3.
  GroundTruth gt(1);
  std::vector<Detection> dets;
  for (int k = 0; k < 10; ++k) {
    const float x = 20.f * static_cast<float>(k);
    gt[0].push_back(gt_box(0, x, 0, x + 9, 9));
    if (k < 3) dets.push_back(det(0, 0, 1.f - 0.1f * static_cast<float>(k), x, 0, x + 9, 9));
  }
  EXPECT_DOUBLE_EQ(evaluate_voc(gt, dets, kOneClass).per_class[0].ap, 3.0 / 11.0);
}

TEST(AveragePrecision, AllPointUsesThePrecisionEnvelope) {
  // Recall .5 at precision 1/2, then 1.0 at 2/3: the envelope lifts the first segment to 2/3,
  // AP = .5 * 2/3 + .5 * 2/3.
  EXPECT_DOUBLE_EQ(average_precision({0.5, 1.0}, {0.5, 2.0 / 3.0}, ApMetric::Voc12), 2.0 / 3.0);
  EXPECT_EQ(average_precision({}, {}, ApMetric::Voc12), 0.0);
  EXPECT_EQ(average_precision({}, {}, ApMetric::Voc07), 0.0);
}

TEST(AveragePrecision, MismatchedLengthsAreAnError) {
  EXPECT_THROW(average_precision({0.5}, {}, ApMetric::Voc07), Error);
}

TEST(ApMetric, NamesRoundTripAndUnknownNamesAreErrors) {
  EXPECT_EQ(ap_metric_from_string(to_string(ApMetric::Voc07)), ApMetric::Voc07);
  EXPECT_EQ(ap_metric_from_string(to_string(ApMetric::Voc12)), ApMetric::Voc12);
  EXPECT_THROW(ap_metric_from_string("coco"), Error);
}

// ---- Golden comparison with scripts/golden_voc_eval.py ------------------------------------------

struct GoldenExpectation {
  ApMetric metric;
  bool inclusive;
  std::vector<double> ap;
  double map;
  std::vector<int> tp, fp;
};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// BEGIN GOLDEN (generated by scripts/golden_voc_eval.py; do not edit by hand)
constexpr uint64_t kGoldenSeed = 20240607ULL;
constexpr int kGoldenImages = 60;
constexpr int kGoldenClasses = 4;
constexpr int kGoldenGroundTruth = 155;
constexpr int kGoldenDetections = 244;
// {metric, inclusive, {AP per class}, mAP, {TP per class}, {FP per class}}
const std::vector<GoldenExpectation> kGoldenExpected = {
    {ApMetric::Voc07,
     true,
     {0.3672905525846703, 0.41767020857929943, 0.36406108558220995, kNaN},
     0.38300728224872654,
     {26, 28, 21, 0},
     {34, 37, 33, 35}},
    {ApMetric::Voc07,
     false,
     {0.3310835305909197, 0.39753787878787883, 0.35658116996632244, kNaN},
     0.36173419311504035,
     {25, 26, 20, 0},
     {37, 40, 34, 35}},
    {ApMetric::Voc12,
     true,
     {0.3581658040919538, 0.40679069607641033, 0.36195427441344136, kNaN},
     0.3756369248606018,
     {26, 28, 21, 0},
     {34, 37, 33, 35}},
    {ApMetric::Voc12,
     false,
     {0.3147018786812131, 0.3611252834467121, 0.3426630639160826, kNaN},
     0.3394967420146693,
     {25, 26, 20, 0},
     {37, 40, 34, 35}},
};
// END GOLDEN

// The generator of scripts/golden_voc_eval.py, statement for statement (same draw order).
class GoldenLcg {
 public:
  explicit GoldenLcg(uint64_t seed) : state_(seed) {}
  uint32_t next_u32() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;  // mod 2^64 by wrap
    return static_cast<uint32_t>(state_ >> 32);
  }
  int uniform(uint32_t n) { return static_cast<int>(next_u32() % n); }

 private:
  uint64_t state_;
};

struct GoldenCase {
  GroundTruth gt;
  std::vector<Detection> dets;
};

GoldenCase make_golden_case() {
  GoldenLcg rng(kGoldenSeed);
  GoldenCase c;
  c.gt.resize(kGoldenImages);
  for (int image = 0; image < kGoldenImages; ++image) {
    const int count = rng.uniform(6);
    for (int k = 0; k < count; ++k) {
      const int label = rng.uniform(3);
      const int x1 = rng.uniform(200);
      const int y1 = rng.uniform(200);
      const int w = 8 + rng.uniform(80);
      const int h = 8 + rng.uniform(80);
      const bool difficult = rng.uniform(100) < 15;
      c.gt[image].push_back(gt_box(label, static_cast<float>(x1), static_cast<float>(y1), static_cast<float>(x1 + w),
                                   static_cast<float>(y1 + h), difficult));
    }
    if (rng.uniform(10) == 0) {
      const int x1 = rng.uniform(200);
      const int y1 = rng.uniform(200);
      c.gt[image].push_back(gt_box(3, static_cast<float>(x1), static_cast<float>(y1), static_cast<float>(x1 + 40),
                                   static_cast<float>(y1 + 30), true));
    }
  }
  const auto score = [&]() {
    const int high = rng.uniform(2048);
    return static_cast<float>(high * 8192 + static_cast<int>(c.dets.size())) / 16777216.0f;
  };
  const auto jitter = [&]() { return static_cast<float>(rng.uniform(11) - 5) * 0.5f; };
  for (int image = 0; image < kGoldenImages; ++image) {
    for (const GroundTruthBox& g : c.gt[image]) {
      const int copies = rng.uniform(3);
      for (int k = 0; k < copies; ++k) {
        const int label = rng.uniform(10) != 0 ? g.label : rng.uniform(kGoldenClasses);
        const float x1 = g.box.x1 + jitter();
        const float y1 = g.box.y1 + jitter();
        const float x2 = g.box.x2 + jitter();
        const float y2 = g.box.y2 + jitter();
        const float s = score();
        c.dets.push_back(det(image, label, s, x1, y1, x2, y2));
      }
      const float width = g.box.x2 - g.box.x1 + 1.f;
      if (rng.uniform(3) == 0 && static_cast<int>(2 * width) % 3 == 0) {
        const float shift = width / 3.f;  // exact: width is a multiple of 1.5 here
        const float s = score();
        c.dets.push_back(det(image, g.label, s, g.box.x1 + shift, g.box.y1, g.box.x2 + shift, g.box.y2));
      }
    }
    const int clutter = rng.uniform(4);
    for (int k = 0; k < clutter; ++k) {
      const int label = rng.uniform(kGoldenClasses);
      const int x1 = rng.uniform(200);
      const int y1 = rng.uniform(200);
      const int x2 = x1 + 8 + rng.uniform(80);
      const int y2 = y1 + 8 + rng.uniform(80);
      const float s = score();
      c.dets.push_back(det(image, label, s, static_cast<float>(x1), static_cast<float>(y1), static_cast<float>(x2),
                           static_cast<float>(y2)));
    }
  }
  return c;
}

TEST(GoldenVocEval, RandomCaseMatchesIndependentPythonFloat64Computation) {
  const GoldenCase c = make_golden_case();
  int gt_count = 0;
  for (const auto& boxes : c.gt) gt_count += static_cast<int>(boxes.size());
  ASSERT_EQ(gt_count, kGoldenGroundTruth) << "generator out of sync with the script";
  ASSERT_EQ(static_cast<int>(c.dets.size()), kGoldenDetections) << "generator out of sync";
  const std::vector<std::string> names = {"c0", "c1", "c2", "c3"};
  double max_error = 0;
  for (const GoldenExpectation& e : kGoldenExpected) {
    const MapResult r = evaluate_voc(c.gt, c.dets, names, with_metric(e.metric, e.inclusive));
    const std::string where = std::string(to_string(e.metric)) + (e.inclusive ? " >=" : " >");
    for (int k = 0; k < kGoldenClasses; ++k) {
      const ClassResult& cr = r.per_class[static_cast<std::size_t>(k)];
      EXPECT_EQ(cr.true_positives, e.tp[static_cast<std::size_t>(k)]) << where << " class " << k;
      EXPECT_EQ(cr.false_positives, e.fp[static_cast<std::size_t>(k)]) << where << " class " << k;
      const double expected = e.ap[static_cast<std::size_t>(k)];
      if (std::isnan(expected)) {
        EXPECT_TRUE(std::isnan(cr.ap)) << where << " class " << k;
        continue;
      }
      EXPECT_NEAR(cr.ap, expected, 1e-6) << where << " class " << k;
      max_error = std::max(max_error, std::abs(cr.ap - expected));
    }
    EXPECT_NEAR(r.map, e.map, 1e-6) << where;
    max_error = std::max(max_error, std::abs(r.map - e.map));
  }
  RecordProperty("golden_max_abs_error", std::to_string(max_error));
  std::printf("golden max |AP error| = %.3g\n", max_error);
}

TEST(GoldenVocEval, CaseExercisesEveryRule) {
  // Guards the golden case against becoming trivial if the generator is retuned.
  const GoldenCase c = make_golden_case();
  const std::vector<std::string> names = {"c0", "c1", "c2", "c3"};
  const MapResult inclusive = evaluate_voc(c.gt, c.dets, names, with_metric(ApMetric::Voc12, true));
  const MapResult strict = evaluate_voc(c.gt, c.dets, names, with_metric(ApMetric::Voc12, false));
  int ignored = 0, difficult = 0;
  for (const ClassResult& cr : inclusive.per_class) {
    ignored += cr.ignored;
    difficult += cr.num_difficult;
  }
  EXPECT_GT(ignored, 0);
  EXPECT_GT(difficult, 0);
  EXPECT_NE(inclusive.map, strict.map);  // some IoUs are exactly 0.5
  EXPECT_TRUE(std::isnan(inclusive.per_class[3].ap));
}

// ---- PR plots ----------------------------------------------------------------------------------

TEST(PrPlots, WritesOnePngPerScoredClassAndASummary) {
  yolo2::testing::TempDir dir("yolo2-plots");
  // "cat" is scored; "dining/table" has no ground truth (NaN AP): no file.
  const GroundTruth gt = {{gt_box(0, 0, 0, 9, 9), gt_box(0, 50, 50, 59, 59)}};
  const std::vector<Detection> dets = {det(0, 0, 0.9f, 0, 0, 9, 9), det(0, 0, 0.8f, 20, 20, 29, 29),
                                       det(0, 1, 0.7f, 0, 0, 9, 9)};
  const MapResult r = evaluate_voc(gt, dets, {"cat", "dining/table"});
  const std::vector<std::string> files = save_pr_plots(r, dir.str() + "/pr");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0], dir.str() + "/pr/pr_cat.png");
  EXPECT_EQ(files[1], dir.str() + "/pr/pr_summary.png");
  const cv::Mat cat = cv::imread(files[0]);
  ASSERT_FALSE(cat.empty());
  EXPECT_EQ(cat.cols, 640);
  EXPECT_EQ(cat.rows, 480);
  // The class curve is drawn in the class's palette colour.
  EXPECT_GT(count_pixels_of(cat, util::palette_colour(0)), 50);
  const cv::Mat summary = cv::imread(files[1]);
  ASSERT_FALSE(summary.empty());
  EXPECT_EQ(summary.cols, 1000);
  int entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path() / "pr")) {
    EXPECT_EQ(entry.path().extension(), ".png") << entry.path();  // no temporary files left
    ++entries;
  }
  EXPECT_EQ(entries, 2);
}

}  // namespace
}  // namespace yolo2::eval
