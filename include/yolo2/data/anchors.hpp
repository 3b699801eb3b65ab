// Dimension clusters (YOLOv2 paper, section 2 "Dimension Clusters"; yolov2-reference.md §1.4):
// k-means on the training boxes' widths and heights with the distance d = 1 - IoU, where the IoU of
// two shapes is taken with both boxes centred on the same point. The anchors are in units of the
// output grid at the network's input size (a box covering the whole image is input_size / 32 cells
// wide), the form of the config's model.anchors and of darknet's [region] anchors.
#pragma once

#include <cstdint>
#include <vector>

#include "yolo2/data/dataset.hpp"

namespace yolo2::data {

struct BoxShape {
  double w = 0, h = 0;
};

// The shape of every object of `dataset` in grid cells at `input_size` (stride 32): its width and
// height relative to the image, times input_size / 32 (the image is resized to the input, as in
// darknet's training and the region loss). Degenerate boxes (zero width or height) are left out.
std::vector<BoxShape> box_shapes(const Dataset& dataset, int input_size);

// IoU of two shapes centred on the same point: min(w) min(h) / (area_a + area_b - min(w) min(h)).
double shape_iou(const BoxShape& a, const BoxShape& b);

// The mean over `boxes` of the IoU with their best anchor (AlexeyAB's calc_anchors "avg IoU").
double mean_best_iou(const std::vector<BoxShape>& boxes, const std::vector<BoxShape>& anchors);

struct AnchorClusters {
  std::vector<BoxShape> anchors;  // sorted by area, smallest first
  double mean_iou = 0;            // mean_best_iou of the boxes with these anchors
  int iterations = 0;             // Lloyd iterations of the run that was kept
};

// Lloyd's k-means from the given centroids: each box goes to the centroid of highest IoU (the first
// on a tie), each centroid becomes the mean width and height of its boxes; a centroid left without
// boxes moves to the box of lowest best IoU (the first such box). Stops when no assignment changes
// or after max_iterations. The result's anchors are sorted by area.
AnchorClusters iou_kmeans(const std::vector<BoxShape>& boxes, std::vector<BoxShape> centroids,
                          int max_iterations = 1000);

// k-means++ seeding with distance 1 - IoU: the first centroid a uniformly drawn box, each next one a
// box drawn with probability proportional to its squared distance to the nearest centroid so far.
// Deterministic for a seed (util::Rng). Requires 1 <= k <= boxes.size().
std::vector<BoxShape> kmeans_pp_seeds(const std::vector<BoxShape>& boxes, int k, uint64_t seed);

// The clusters: `restarts` k-means runs from k-means++ seeds (seed, seed + 1, ...), the one of
// highest mean IoU kept (the first on a tie). Throws yolo2::Error when there are fewer distinct
// shapes than k, or k or restarts is below 1.
AnchorClusters dimension_clusters(const std::vector<BoxShape>& boxes, int k, uint64_t seed, int restarts = 5);

}  // namespace yolo2::data
