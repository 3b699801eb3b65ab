// COCO-style box evaluation (eval.metric: coco), restating pycocotools' COCOeval for iouType
// "bbox" (evaluate, accumulate, summarize): AP averaged over IoU 0.50:0.05:0.95 and 101 recall
// points, AP50, AP75, AP of small / medium / large objects (area below 32^2, up to 96^2, above), and
// AR with at most 1, 10 and 100 detections per image and class. Crowd boxes match many detections
// and are matched by intersection over the detection's area; an ignored ground truth (crowd, or a
// VOC difficult object) neither counts as missed nor makes its matches false positives.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace yolo2::eval {

// Boxes as COCO writes them: x, y, width, height in pixels (doubles, as pycocotools reads JSON).
struct CocoGroundTruth {
  int image = 0;  // index into the images
  int label = 0;  // index into the classes
  double x = 0, y = 0, w = 0, h = 0;
  double area = 0;  // COCO's `area` (segment area in real COCO; w * h where there is none)
  bool crowd = false;
  bool ignore = false;  // crowd, or difficult
};

struct CocoDetection {
  int image = 0;
  int label = 0;
  double x = 0, y = 0, w = 0, h = 0;
  double score = 0;
};

struct CocoResult {
  // pycocotools' stats, in its order: AP, AP50, AP75, AP_small, AP_medium, AP_large, AR_1, AR_10,
  // AR_100, AR_small, AR_medium, AR_large; -1 where nothing could be measured (pycocotools' -1).
  std::vector<double> stats;
  std::vector<double> per_class_ap;  // AP (IoU .50:.95, all areas, 100 detections); -1 without ground truth
  std::vector<int> per_class_gt;     // ground truths that are not ignored
  int images = 0, detections = 0;
};

// The names of CocoResult::stats, e.g. "AP", "AP50", ..., "AR_large".
const std::vector<std::string>& coco_stat_names();

// Every image 0..num_images-1 and class 0..num_classes-1 is evaluated (pycocotools' imgIds and
// catIds: all of the ground truth's). Ground truths keep their order (pycocotools' annotation
// order); detections are ranked by score with a stable sort, equal scores of different images in
// `image_order` (pycocotools': by image id; empty: by index). Throws yolo2::Error on an image or
// label out of range or a score that is not finite.
CocoResult evaluate_coco(const std::vector<CocoGroundTruth>& ground_truth, const std::vector<CocoDetection>& detections,
                         int num_images, int num_classes, const std::vector<int>& image_order = {});

// A table of the 12 figures and the per-class AP, as pycocotools' summarize() prints them.
std::string format_coco_table(const CocoResult& result, const std::vector<std::string>& class_names);

}  // namespace yolo2::eval
