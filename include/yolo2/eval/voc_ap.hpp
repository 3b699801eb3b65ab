// Pascal VOC detection metrics: matching detections to ground truth and average precision.
// Semantics of the VOC devkit and py-faster-rcnn's voc_eval.py (yolov2-reference.md §6.1).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "yolo2/ops/boxes.hpp"

namespace yolo2::eval {

// Boxes are 0-based pixel x1, y1, x2, y2 with inclusive corners (as parsed from VOC XML).
using PixelBox = ops::Box;
// Detections match ground truths by the IoU with the VOC '+1' convention (ops/boxes.hpp).
using ops::voc_iou;

struct GroundTruthBox {
  int label = 0;
  PixelBox box;
  bool difficult = false;
};

struct Detection {
  int image = 0;  // index into the ground-truth image list
  int label = 0;
  float score = 0;
  PixelBox box;
};

enum class ApMetric { Voc07, Voc12 };  // 11-point (VOC2007) or area under the envelope (2010+)
const char* to_string(ApMetric metric);
ApMetric ap_metric_from_string(const std::string& name);  // "voc07" | "voc12"; throws yolo2::Error

struct VocEvalOptions {
  ApMetric metric = ApMetric::Voc07;
  double iou_threshold = 0.5;
  // true: IoU >= threshold is a match (the official devkit's VOCevaldet.m);
  // false: IoU > threshold (py-faster-rcnn's voc_eval.py).
  bool inclusive_threshold = true;
};

struct ClassResult {
  std::string name;
  double ap = 0;          // NaN when the class has no non-difficult ground truth
  int num_gt = 0;         // non-difficult ground truths (voc_eval's npos)
  int num_difficult = 0;  // difficult ground truths
  int num_detections = 0;
  int true_positives = 0, false_positives = 0;  // at the lowest score
  int ignored = 0;                              // detections whose best match is a difficult GT: neither TP nor FP
  // One entry per detection, in descending score order (ignored detections included, repeating
  // the previous point, exactly as voc_eval's cumsum arrays do). recall is NaN throughout when
  // num_gt == 0 (nothing to recall).
  std::vector<double> recall, precision;
};

struct MapResult {
  ApMetric metric = ApMetric::Voc07;
  double iou_threshold = 0.5;
  bool inclusive_threshold = true;
  // Mean over classes with at least one non-difficult ground truth (NaN-AP classes are left out
  // of the mean, not counted as 0); NaN when no class has any.
  double map = 0;
  int evaluated_classes = 0;  // classes that entered the mean
  std::vector<ClassResult> per_class;
  int images = 0;
  int detections = 0;
};

// AP from a PR curve (recall non-decreasing, as produced by the matching), computed as
// voc_eval.py's voc_ap (yolov2-reference.md §6.1):
//  - Voc07: (1/11) * sum over t = k * 0.1 (k = 0..10, float64, i.e. numpy's arange(0, 1.1, 0.1),
//    so t = 0.30000000000000004 etc.) of max{precision[i] : recall[i] >= t}, 0 if none;
//  - Voc12: area under the right-to-left maximum envelope of [0, prec, 0] over [0, rec, 1].
// Throws yolo2::Error when the two vectors differ in length.
double average_precision(const std::vector<double>& recall, const std::vector<double>& precision, ApMetric metric);

// Scores every class (label = index into class_names). ground_truth[i] holds the boxes of image
// i; detections reference images by index and may come in any order. Per class, detections are
// ranked by descending score with a STABLE sort: equal scores keep their order in `detections`
// (numpy's argsort in voc_eval is not stable, so its tie order is unspecified). Each detection
// is compared with the class's GTs in its image by voc_iou; the first GT of maximum IoU decides
// (voc_eval's argmax): difficult -> ignored, already taken -> FP, else TP; below the threshold
// -> FP. Throws yolo2::Error naming the offending detection (or GT) when an image index or label
// is out of range, or a score is NaN.
MapResult evaluate_voc(const std::vector<std::vector<GroundTruthBox>>& ground_truth,
                       const std::vector<Detection>& detections, const std::vector<std::string>& class_names,
                       const VocEvalOptions& options = {});

}  // namespace yolo2::eval
