#include "yolo2/eval/coco_eval.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "yolo2/error.hpp"

namespace yolo2::eval {
namespace {

constexpr int kIous = 10, kRecalls = 101, kAreas = 4;
constexpr int kMaxDets[3] = {1, 10, 100};
// pycocotools' areaRng: all, small, medium, large (bounds inclusive).
constexpr double kAreaRange[kAreas][2] = {{0, 1e10}, {0, 32.0 * 32}, {32.0 * 32, 96.0 * 96}, {96.0 * 96, 1e10}};

// numpy's linspace(start, stop, num): start + i * (stop - start) / (num - 1), the last one `stop`.
std::vector<double> linspace(double start, double stop, int num) {
  std::vector<double> y(static_cast<std::size_t>(num));
  const double step = (stop - start) / (num - 1);
  for (int i = 0; i < num; ++i) y[static_cast<std::size_t>(i)] = i * step + start;
  y.back() = stop;
  return y;
}

const std::vector<double>& iou_thresholds() {
  static const std::vector<double> t = linspace(0.5, 0.95, kIous);
  return t;
}
const std::vector<double>& recall_thresholds() {
  static const std::vector<double> r = linspace(0.0, 1.0, kRecalls);
  return r;
}

// maskUtils.bbIou: intersection over union, or over the detection's area for a crowd box.
double box_iou(const CocoDetection& d, const CocoGroundTruth& g) {
  const double w = std::min(d.x + d.w, g.x + g.w) - std::max(d.x, g.x);
  if (w <= 0) return 0;
  const double h = std::min(d.y + d.h, g.y + g.h) - std::max(d.y, g.y);
  if (h <= 0) return 0;
  const double i = w * h, u = g.crowd ? d.w * d.h : d.w * d.h + g.w * g.h - i;
  return i / u;
}

// evaluateImg for one image, class and area range: the detections' matches and ignores at every
// IoU threshold, and how many ground truths count.
struct ImageEval {
  std::vector<double> scores;                                // the image's detections of the class, best first (<= 100)
  std::array<std::vector<uint8_t>, kIous> matched, ignored;  // per threshold, per detection
  int counted_gt = 0;                                        // ground truths not ignored (npig's share)
};

ImageEval evaluate_image(const std::vector<const CocoGroundTruth*>& gt_in, const std::vector<const CocoDetection*>& dt,
                         const std::vector<std::vector<double>>& ious_in, const double range[2]) {
  // Ground truths not ignored first (a stable sort on the ignore flag).
  const std::size_t G = gt_in.size(), D = dt.size();
  std::vector<std::size_t> order(G);
  std::iota(order.begin(), order.end(), 0);
  std::vector<uint8_t> ig_in(G);
  for (std::size_t g = 0; g < G; ++g)
    ig_in[g] = gt_in[g]->ignore || gt_in[g]->area < range[0] || gt_in[g]->area > range[1];
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ig_in[a] < ig_in[b]; });
  ImageEval e;
  for (const auto* d : dt) e.scores.push_back(d->score);
  for (std::size_t g = 0; g < G; ++g) e.counted_gt += ig_in[g] == 0;
  for (int t = 0; t < kIous; ++t) {
    std::vector<uint8_t> gt_taken(G, 0), dt_matched(D, 0), dt_ignored(D, 0);
    for (std::size_t d = 0; d < D; ++d) {
      double best = std::min(iou_thresholds()[static_cast<std::size_t>(t)], 1 - 1e-10);
      int m = -1;
      for (std::size_t k = 0; k < G; ++k) {
        const std::size_t g = order[k];
        if (gt_taken[k] && !gt_in[g]->crowd) continue;
        if (m > -1 && !ig_in[order[static_cast<std::size_t>(m)]] && ig_in[g]) break;
        if (ious_in[d][g] < best) continue;
        best = ious_in[d][g];
        m = static_cast<int>(k);
      }
      if (m == -1) continue;
      dt_ignored[d] = ig_in[order[static_cast<std::size_t>(m)]];
      dt_matched[d] = 1;
      gt_taken[static_cast<std::size_t>(m)] = 1;
    }
    // An unmatched detection outside the area range is ignored.
    for (std::size_t d = 0; d < D; ++d) {
      const double area = dt[d]->w * dt[d]->h;
      if (!dt_matched[d] && (area < range[0] || area > range[1])) dt_ignored[d] = 1;
    }
    e.matched[static_cast<std::size_t>(t)] = std::move(dt_matched);
    e.ignored[static_cast<std::size_t>(t)] = std::move(dt_ignored);
  }
  return e;
}

// accumulate for one class, area range and detection limit: recall, and precision at the 101
// recall points, per IoU threshold; false when no ground truth counts (pycocotools' -1).
bool accumulate(const std::vector<const ImageEval*>& evals, int max_det, std::array<double, kIous>& recall,
                std::array<std::vector<double>, kIous>& precision) {
  std::vector<double> scores;
  std::vector<std::pair<std::size_t, std::size_t>> where;  // (eval, detection)
  int npig = 0;
  for (std::size_t e = 0; e < evals.size(); ++e) {
    npig += evals[e]->counted_gt;
    const std::size_t n = std::min(evals[e]->scores.size(), static_cast<std::size_t>(max_det));
    for (std::size_t d = 0; d < n; ++d) scores.push_back(evals[e]->scores[d]), where.emplace_back(e, d);
  }
  if (npig == 0) return false;
  std::vector<std::size_t> inds(scores.size());
  std::iota(inds.begin(), inds.end(), 0);
  std::stable_sort(inds.begin(), inds.end(), [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  for (int t = 0; t < kIous; ++t) {
    std::vector<double> rc, pr;
    double tp = 0, fp = 0;
    for (std::size_t i : inds) {
      const auto [e, d] = where[i];
      if (evals[e]->ignored[static_cast<std::size_t>(t)][d]) {
        // Neither: the cumulative sums repeat their last values.
      } else if (evals[e]->matched[static_cast<std::size_t>(t)][d]) {
        tp += 1;
      } else {
        fp += 1;
      }
      rc.push_back(tp / npig);
      pr.push_back(tp / (fp + tp + std::numeric_limits<double>::epsilon()));
    }
    recall[static_cast<std::size_t>(t)] = rc.empty() ? 0 : rc.back();
    for (std::size_t i = pr.size(); i-- > 1;)
      if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
    std::vector<double> q(kRecalls, 0);
    for (int r = 0; r < kRecalls; ++r) {
      // searchsorted(rc, threshold, side='left'); pycocotools stops at the first index past the end.
      const auto pi = static_cast<std::size_t>(
          std::lower_bound(rc.begin(), rc.end(), recall_thresholds()[static_cast<std::size_t>(r)]) - rc.begin());
      if (pi >= pr.size()) break;
      q[static_cast<std::size_t>(r)] = pr[pi];
    }
    precision[static_cast<std::size_t>(t)] = std::move(q);
  }
  return true;
}

// Mean of the values that are not -1 (pycocotools' np.mean(s[s > -1])), or -1.
struct Mean {
  double sum = 0;
  int64_t n = 0;
  void add(double v) {
    if (v > -1) sum += v, ++n;
  }
  double value() const { return n ? sum / static_cast<double>(n) : -1; }
};

}  // namespace

const std::vector<std::string>& coco_stat_names() {
  static const std::vector<std::string> n{"AP",   "AP50",  "AP75",   "AP_small", "AP_medium", "AP_large",
                                          "AR_1", "AR_10", "AR_100", "AR_small", "AR_medium", "AR_large"};
  return n;
}

namespace {

// pycocotools' eval["precision"] and eval["recall"], per class, area range and detection limit;
// `measured` false where no ground truth counts (pycocotools' -1).
struct Accumulated {
  template <class T>
  using PerClass = std::vector<std::array<std::array<T, 3>, kAreas>>;
  PerClass<std::array<double, kIous>> recall;
  PerClass<std::array<std::vector<double>, kIous>> precision;
  PerClass<bool> measured;
  explicit Accumulated(int classes)
      : recall(static_cast<std::size_t>(classes)),
        precision(static_cast<std::size_t>(classes)),
        measured(static_cast<std::size_t>(classes)) {}
};

// The ground truths and detections of each (class, image) cell, checked.
struct Cells {
  int images = 0;
  std::vector<int> order;  // the images in pycocotools' order
  std::vector<std::vector<const CocoGroundTruth*>> gts;
  std::vector<std::vector<const CocoDetection*>> dts;
  std::size_t at(int image, int label) const {
    return static_cast<std::size_t>(label) * static_cast<std::size_t>(images) + static_cast<std::size_t>(image);
  }
};

Cells cells_of(const std::vector<CocoGroundTruth>& ground_truth, const std::vector<CocoDetection>& detections,
               int num_images, int num_classes) {
  Cells c;
  c.images = num_images;
  const std::size_t n = static_cast<std::size_t>(num_images) * static_cast<std::size_t>(num_classes);
  c.gts.resize(n), c.dts.resize(n);
  for (std::size_t i = 0; i < ground_truth.size(); ++i) {
    const auto& g = ground_truth[i];
    if (g.image < 0 || g.image >= num_images || g.label < 0 || g.label >= num_classes)
      throw Error("COCO evaluation: ground truth " + std::to_string(i) + " has image " + std::to_string(g.image) +
                  " / class " + std::to_string(g.label) + " out of range");
    c.gts[c.at(g.image, g.label)].push_back(&g);
  }
  for (std::size_t i = 0; i < detections.size(); ++i) {
    const auto& d = detections[i];
    if (d.image < 0 || d.image >= num_images || d.label < 0 || d.label >= num_classes || !std::isfinite(d.score))
      throw Error("COCO evaluation: detection " + std::to_string(i) + " has image " + std::to_string(d.image) +
                  ", class " + std::to_string(d.label) + " or score out of range");
    c.dts[c.at(d.image, d.label)].push_back(&d);
  }
  return c;
}

// evaluate() and accumulate() for class k; returns its ground truths that count.
int evaluate_class(const Cells& cells, int k, Accumulated& acc) {
  const auto ks = static_cast<std::size_t>(k);
  std::array<std::vector<ImageEval>, kAreas> evals;
  int counted = 0;
  for (int i : cells.order) {
    const auto& g = cells.gts[cells.at(i, k)];
    std::vector<const CocoDetection*> d = cells.dts[cells.at(i, k)];
    if (g.empty() && d.empty()) continue;
    std::stable_sort(d.begin(), d.end(), [](const auto* a, const auto* b) { return a->score > b->score; });
    if (d.size() > 100) d.resize(100);
    std::vector<std::vector<double>> ious(d.size(), std::vector<double>(g.size()));
    for (std::size_t a = 0; a < d.size(); ++a)
      for (std::size_t b = 0; b < g.size(); ++b) ious[a][b] = box_iou(*d[a], *g[b]);
    for (int a = 0; a < kAreas; ++a)
      evals[static_cast<std::size_t>(a)].push_back(evaluate_image(g, d, ious, kAreaRange[a]));
    for (const auto* x : g) counted += !x->ignore;
  }
  for (std::size_t a = 0; a < kAreas; ++a) {
    std::vector<const ImageEval*> e;
    for (const auto& x : evals[a]) e.push_back(&x);
    for (std::size_t m = 0; m < 3; ++m)
      acc.measured[ks][a][m] = accumulate(e, kMaxDets[m], acc.recall[ks][a][m], acc.precision[ks][a][m]);
  }
  return counted;
}

// summarize(): the mean AP over thresholds `t` (-1: all) and classes `k` (-1: all), or the mean AR.
double mean_ap(const Accumulated& acc, int t, std::size_t a, std::size_t m, int k = -1) {
  Mean mean;
  for (std::size_t c = 0; c < acc.precision.size(); ++c) {
    if ((k >= 0 && c != static_cast<std::size_t>(k)) || !acc.measured[c][a][m]) continue;
    for (int tt = 0; tt < kIous; ++tt)
      if (t < 0 || tt == t)
        for (double v : acc.precision[c][a][m][static_cast<std::size_t>(tt)]) mean.add(v);
  }
  return mean.value();
}

double mean_ar(const Accumulated& acc, std::size_t a, std::size_t m) {
  Mean mean;
  for (std::size_t c = 0; c < acc.recall.size(); ++c)
    if (acc.measured[c][a][m])
      for (double v : acc.recall[c][a][m]) mean.add(v);
  return mean.value();
}

}  // namespace

CocoResult evaluate_coco(const std::vector<CocoGroundTruth>& ground_truth, const std::vector<CocoDetection>& detections,
                         int num_images, int num_classes, const std::vector<int>& image_order) {
  Cells cells = cells_of(ground_truth, detections, num_images, num_classes);
  cells.order = image_order;
  if (cells.order.empty())
    for (int i = 0; i < num_images; ++i) cells.order.push_back(i);
  if (cells.order.size() != static_cast<std::size_t>(num_images))
    throw Error("COCO evaluation: the image order names " + std::to_string(cells.order.size()) + " of " +
                std::to_string(num_images) + " images");
  Accumulated acc(num_classes);
  CocoResult r;
  r.images = num_images;
  r.detections = static_cast<int>(detections.size());
  for (int k = 0; k < num_classes; ++k) r.per_class_gt.push_back(evaluate_class(cells, k, acc));
  r.stats = {mean_ap(acc, -1, 0, 2), mean_ap(acc, 0, 0, 2),  mean_ap(acc, 5, 0, 2), mean_ap(acc, -1, 1, 2),
             mean_ap(acc, -1, 2, 2), mean_ap(acc, -1, 3, 2), mean_ar(acc, 0, 0),    mean_ar(acc, 0, 1),
             mean_ar(acc, 0, 2),     mean_ar(acc, 1, 2),     mean_ar(acc, 2, 2),    mean_ar(acc, 3, 2)};
  for (int k = 0; k < num_classes; ++k) r.per_class_ap.push_back(mean_ap(acc, -1, 0, 2, k));
  return r;
}

std::string format_coco_table(const CocoResult& r, const std::vector<std::string>& class_names) {
  static const char* const rows[12] = {"Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
                                       "Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]",
                                       "Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ]",
                                       "Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
                                       "Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
                                       "Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
                                       "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ]",
                                       "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ]",
                                       "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
                                       "Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
                                       "Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
                                       "Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]"};
  std::string out;
  char line[160];
  for (std::size_t i = 0; i < r.stats.size() && i < 12; ++i) {
    std::snprintf(line, sizeof line, " %s = %.3f\n", rows[i], r.stats[i]);
    out += line;
  }
  std::size_t w = 5;
  for (const auto& n : class_names) w = std::max(w, n.size());
  std::snprintf(line, sizeof line, "\n  %-*s %8s %8s\n", static_cast<int>(w), "class", "gt", "AP");
  out += line;
  for (std::size_t k = 0; k < r.per_class_ap.size() && k < class_names.size(); ++k) {
    if (r.per_class_ap[k] > -1)
      std::snprintf(line, sizeof line, "  %-*s %8d %8.4f\n", static_cast<int>(w), class_names[k].c_str(),
                    r.per_class_gt[k], r.per_class_ap[k]);
    else
      std::snprintf(line, sizeof line, "  %-*s %8d %8s\n", static_cast<int>(w), class_names[k].c_str(),
                    r.per_class_gt[k], "-");
    out += line;
  }
  return out;
}

}  // namespace yolo2::eval
