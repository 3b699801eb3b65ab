#include "yolo2/data/anchors.hpp"

#include <algorithm>
#include <limits>
#include <set>
#include <string>
#include <utility>

#include "yolo2/error.hpp"
#include "yolo2/util/rng.hpp"

namespace yolo2::data {

std::vector<BoxShape> box_shapes(const Dataset& dataset, int input_size) {
  const double cells = input_size / 32.0;
  std::vector<BoxShape> out;
  for (const auto& image : dataset.images) {
    if (image.width <= 0 || image.height <= 0) continue;
    for (const auto& o : image.objects) {
      // x2 - x1 wide, as darknet's voc_label.py (xmax - xmin) and the loader's targets have it.
      const double w = double(o.x2 - o.x1) / image.width, h = double(o.y2 - o.y1) / image.height;
      if (w > 0 && h > 0) out.push_back({w * cells, h * cells});
    }
  }
  return out;
}

double shape_iou(const BoxShape& a, const BoxShape& b) {
  const double inter = std::min(a.w, b.w) * std::min(a.h, b.h);
  return inter / (a.w * a.h + b.w * b.h - inter);
}

namespace {

// Index of the centroid of highest IoU with `box` (the first on a tie), and that IoU.
std::pair<int, double> best_centroid(const BoxShape& box, const std::vector<BoxShape>& centroids) {
  int best = 0;
  double best_iou = -1;
  for (std::size_t c = 0; c < centroids.size(); ++c) {
    const double iou = shape_iou(box, centroids[c]);
    if (iou > best_iou) best = static_cast<int>(c), best_iou = iou;
  }
  return {best, best_iou};
}

void sort_by_area(std::vector<BoxShape>& shapes) {
  std::stable_sort(shapes.begin(), shapes.end(),
                   [](const BoxShape& a, const BoxShape& b) { return a.w * a.h < b.w * b.h; });
}

// One Lloyd update: new centroids from the assignment; an empty cluster takes the box of lowest
// best IoU that no earlier empty cluster took.
std::vector<BoxShape> update_centroids(const std::vector<BoxShape>& boxes, const std::vector<int>& assignment,
                                       const std::vector<double>& best_iou, std::size_t k) {
  std::vector<double> sw(k, 0), sh(k, 0);
  std::vector<int64_t> n(k, 0);
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    sw[assignment[i]] += boxes[i].w, sh[assignment[i]] += boxes[i].h, ++n[assignment[i]];
  }
  std::vector<BoxShape> out(k);
  std::vector<bool> taken(boxes.size(), false);
  for (std::size_t c = 0; c < k; ++c) {
    if (n[c] > 0) {
      out[c] = {sw[c] / static_cast<double>(n[c]), sh[c] / static_cast<double>(n[c])};
      continue;
    }
    std::size_t worst = 0;
    double worst_iou = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < boxes.size(); ++i)
      if (!taken[i] && best_iou[i] < worst_iou) worst = i, worst_iou = best_iou[i];
    taken[worst] = true;
    out[c] = boxes[worst];
  }
  return out;
}

}  // namespace

double mean_best_iou(const std::vector<BoxShape>& boxes, const std::vector<BoxShape>& anchors) {
  if (boxes.empty() || anchors.empty()) return 0;
  double sum = 0;
  for (const auto& b : boxes) sum += best_centroid(b, anchors).second;
  return sum / static_cast<double>(boxes.size());
}

AnchorClusters iou_kmeans(const std::vector<BoxShape>& boxes, std::vector<BoxShape> centroids, int max_iterations) {
  if (boxes.empty() || centroids.empty()) throw Error("anchors: k-means needs at least one box and one centroid");
  std::vector<int> assignment(boxes.size(), -1);
  std::vector<double> best_iou(boxes.size(), 0);
  int iterations = 0;
  for (; iterations < max_iterations; ++iterations) {
    bool changed = false;
    for (std::size_t i = 0; i < boxes.size(); ++i) {
      const auto [c, iou] = best_centroid(boxes[i], centroids);
      changed = changed || c != assignment[i];
      assignment[i] = c, best_iou[i] = iou;
    }
    if (!changed) break;
    centroids = update_centroids(boxes, assignment, best_iou, centroids.size());
  }
  sort_by_area(centroids);
  AnchorClusters out;
  out.mean_iou = mean_best_iou(boxes, centroids);
  out.anchors = std::move(centroids);
  out.iterations = iterations;
  return out;
}

std::vector<BoxShape> kmeans_pp_seeds(const std::vector<BoxShape>& boxes, int k, uint64_t seed) {
  if (k < 1 || static_cast<std::size_t>(k) > boxes.size())
    throw Error("anchors: k-means++ needs 1 <= k <= the number of boxes (k " + std::to_string(k) + ", " +
                std::to_string(boxes.size()) + " boxes)");
  util::Rng rng(seed);
  std::vector<BoxShape> seeds{
      boxes[static_cast<std::size_t>(rng.uniform_int(0, static_cast<int64_t>(boxes.size()) - 1))]};
  std::vector<double> d2(boxes.size());
  while (seeds.size() < static_cast<std::size_t>(k)) {
    double total = 0;
    for (std::size_t i = 0; i < boxes.size(); ++i) {
      const double d = 1 - best_centroid(boxes[i], seeds).second;
      total += d2[i] = d * d;
    }
    // Every box equal to a seed already: take the next box (dimension_clusters has refused the
    // case of fewer distinct shapes than k, so this only happens for direct callers).
    std::size_t pick = 0;
    if (total > 0) {
      const double r = rng.uniform() * total;
      double acc = 0;
      pick = boxes.size() - 1;
      for (std::size_t i = 0; i < boxes.size(); ++i)
        if ((acc += d2[i]) > r && d2[i] > 0) {
          pick = i;
          break;
        }
    }
    seeds.push_back(boxes[pick]);
  }
  return seeds;
}

AnchorClusters dimension_clusters(const std::vector<BoxShape>& boxes, int k, uint64_t seed, int restarts) {
  if (k < 1) throw Error("anchors: -k must be at least 1, got " + std::to_string(k));
  if (restarts < 1) throw Error("anchors: --restarts must be at least 1, got " + std::to_string(restarts));
  std::set<std::pair<double, double>> distinct;
  for (const auto& b : boxes) {
    distinct.insert({b.w, b.h});
    if (distinct.size() >= static_cast<std::size_t>(k)) break;
  }
  if (distinct.size() < static_cast<std::size_t>(k))
    throw Error("anchors: " + std::to_string(k) + " clusters asked for, but the boxes have only " +
                std::to_string(distinct.size()) + " distinct shapes (" + std::to_string(boxes.size()) + " boxes)");
  AnchorClusters best;
  best.mean_iou = -1;
  for (int r = 0; r < restarts; ++r) {
    AnchorClusters run = iou_kmeans(boxes, kmeans_pp_seeds(boxes, k, seed + static_cast<uint64_t>(r)));
    if (run.mean_iou > best.mean_iou) best = std::move(run);
  }
  return best;
}

}  // namespace yolo2::data
