// COCO's results JSON (what detectron2, mmdetection and pycocotools' loadRes exchange):
//     [{"image_id": 42, "category_id": 18, "bbox": [x, y, w, h], "score": 0.93}, ...]
// with boxes in pixels (x, y the top-left corner). For a COCO dataset the ids are COCO's (image ids
// and category ids from its JSON); for a VOC or darknet dataset, which have no numeric ids, the
// image is its string id ("000005") and the category is the label + 1.
#pragma once

#include <string>
#include <vector>

#include "yolo2/data/dataset.hpp"
#include "yolo2/eval/coco_eval.hpp"
#include "yolo2/eval/voc_ap.hpp"

namespace yolo2::eval {

// The dataset's objects as COCO ground truth: [x1, y1, x2 - x1, y2 - y1], the object's COCO area
// (w * h when it has none), crowd as COCO's iscrowd; a crowd or difficult object is ignored.
std::vector<CocoGroundTruth> coco_ground_truth(const data::Dataset& dataset);

// The images by COCO image id (pycocotools evaluates them in that order, which breaks score ties
// across images); by index for the other forms.
std::vector<int> coco_image_order(const data::Dataset& dataset);

// Detections (Detection::image indexes the dataset's images) in COCO's form.
std::vector<CocoDetection> coco_detections(const std::vector<Detection>& detections);

// Writes the results JSON (atomically: a temporary file renamed over `path`). Scores and boxes
// with every bit of their floats. Throws yolo2::Error naming the file on an I/O failure or an image
// or label out of range.
void write_coco_results(const std::string& path, const data::Dataset& dataset,
                        const std::vector<Detection>& detections);

// Reads a results JSON against `dataset`. Every problem is a yolo2::Error naming the file and the
// JSON path: not a list, an entry without image_id / category_id / bbox / score, an image or
// category the dataset does not have, a bbox that is not 4 finite numbers with w, h >= 0, a score
// that is not finite.
std::vector<CocoDetection> read_coco_results(const std::string& path, const data::Dataset& dataset);

// The same detections for the VOC protocol (0-based corners x, y, x + w, y + h).
std::vector<Detection> voc_detections(const std::vector<CocoDetection>& detections);

}  // namespace yolo2::eval
