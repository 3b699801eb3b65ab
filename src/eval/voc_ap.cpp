// Pascal VOC AP: a re-statement of py-faster-rcnn's lib/datasets/voc_eval.py in C++
// (yolov2-reference.md §6.1). All arithmetic that reaches the AP is float64 and follows numpy's
// order of operations, so results agree with voc_eval.py to the last few ulps.
#include "yolo2/eval/voc_ap.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "yolo2/error.hpp"

namespace yolo2::eval {
namespace {

// numpy's np.finfo(np.float64).eps: voc_eval's guard against 0 / 0 when the first ranked
// detections are all ignored (tp + fp == 0).
constexpr double kPrecisionEps = std::numeric_limits<double>::epsilon();
constexpr int kVoc07Points = 11;

// The per-(class, image) ground truth of one evaluation, grouped once so that matching a
// detection touches only the GTs it can match (CSR layout: GT j of cell c lies at
// entries[offsets[c] + j], with cell c = label * num_images + image, in annotation order).
struct GroupedGroundTruth {
  std::vector<std::size_t> offsets;  // [num_classes * num_images + 1]
  std::vector<PixelBox> boxes;
  std::vector<char> difficult;
  std::vector<int> non_difficult_per_class;
  std::vector<int> difficult_per_class;
};

GroupedGroundTruth group_ground_truth(const std::vector<std::vector<GroundTruthBox>>& ground_truth,
                                      std::size_t num_classes) {
  const std::size_t num_images = ground_truth.size();
  GroupedGroundTruth g;
  g.offsets.assign(num_classes * num_images + 1, 0);
  g.non_difficult_per_class.assign(num_classes, 0);
  g.difficult_per_class.assign(num_classes, 0);
  for (std::size_t image = 0; image < num_images; ++image) {
    const auto& boxes = ground_truth[image];
    for (std::size_t k = 0; k < boxes.size(); ++k) {
      const int label = boxes[k].label;
      if (label < 0 || static_cast<std::size_t>(label) >= num_classes) {
        throw Error("evaluate_voc: ground-truth box " + std::to_string(k) + " of image " + std::to_string(image) +
                    " has label " + std::to_string(label) + ", outside [0, " + std::to_string(num_classes) + ")");
      }
      ++g.offsets[static_cast<std::size_t>(label) * num_images + image + 1];
      (boxes[k].difficult ? g.difficult_per_class : g.non_difficult_per_class)[label] += 1;
    }
  }
  std::partial_sum(g.offsets.begin(), g.offsets.end(), g.offsets.begin());
  g.boxes.resize(g.offsets.back());
  g.difficult.resize(g.offsets.back());
  std::vector<std::size_t> cursor(g.offsets.begin(), g.offsets.end() - 1);
  for (std::size_t image = 0; image < num_images; ++image) {
    for (const auto& gt : ground_truth[image]) {
      const std::size_t at = cursor[static_cast<std::size_t>(gt.label) * num_images + image]++;
      g.boxes[at] = gt.box;
      g.difficult[at] = gt.difficult ? 1 : 0;
    }
  }
  return g;
}

void validate_detections(const std::vector<Detection>& detections, std::size_t num_images, std::size_t num_classes) {
  for (std::size_t i = 0; i < detections.size(); ++i) {
    const Detection& d = detections[i];
    if (d.image < 0 || static_cast<std::size_t>(d.image) >= num_images) {
      throw Error("evaluate_voc: detection " + std::to_string(i) + " refers to image " + std::to_string(d.image) +
                  ", outside [0, " + std::to_string(num_images) + ")");
    }
    if (d.label < 0 || static_cast<std::size_t>(d.label) >= num_classes) {
      throw Error("evaluate_voc: detection " + std::to_string(i) + " (image " + std::to_string(d.image) +
                  ") has label " + std::to_string(d.label) + ", outside [0, " + std::to_string(num_classes) + ")");
    }
    // A NaN would break the strict weak ordering of the sort (undefined behaviour).
    if (std::isnan(d.score)) {
      throw Error("evaluate_voc: detection " + std::to_string(i) + " (image " + std::to_string(d.image) + ", label " +
                  std::to_string(d.label) + ") has a NaN score");
    }
  }
}

}  // namespace

const char* to_string(ApMetric metric) {
  switch (metric) {
    case ApMetric::Voc07:
      return "voc07";
    case ApMetric::Voc12:
      return "voc12";
  }
  return "unknown";
}

ApMetric ap_metric_from_string(const std::string& name) {
  if (name == "voc07") return ApMetric::Voc07;
  if (name == "voc12") return ApMetric::Voc12;
  throw Error("unknown AP metric '" + name + "' (expected voc07 or voc12)");
}

double average_precision(const std::vector<double>& recall, const std::vector<double>& precision, ApMetric metric) {
  if (recall.size() != precision.size()) {
    throw Error("average_precision: recall has " + std::to_string(recall.size()) + " points but precision has " +
                std::to_string(precision.size()));
  }
  const std::size_t n = recall.size();
  if (metric == ApMetric::Voc07) {
    double ap = 0.;
    for (int k = 0; k < kVoc07Points; ++k) {
      // numpy's arange fills start + k * delta with delta = (start + step) - start; with
      // start = 0 this is k * 0.1 in float64 (0.30000000000000004 at k = 3), and that value,
      // not 0.3, decides whether a recall of exactly 0.3 qualifies.
      const double t = 0. + k * 0.1;
      bool any = false;
      double p = 0.;
      for (std::size_t i = 0; i < n; ++i) {
        if (recall[i] >= t) {
          p = any ? std::max(p, precision[i]) : precision[i];
          any = true;
        }
      }
      ap = ap + p / 11.;
    }
    return ap;
  }
  // All-point AP: sentinels, envelope from the right, then sum the rectangles where recall
  // changes. Sequential summation: numpy's np.sum is pairwise, which can differ in the last
  // ulps on long curves (well below any printed precision).
  std::vector<double> mrec(n + 2), mpre(n + 2);
  mrec[0] = 0.;
  mpre[0] = 0.;
  std::copy(recall.begin(), recall.end(), mrec.begin() + 1);
  std::copy(precision.begin(), precision.end(), mpre.begin() + 1);
  mrec[n + 1] = 1.;
  mpre[n + 1] = 0.;
  for (std::size_t i = n + 1; i > 0; --i) mpre[i - 1] = std::max(mpre[i - 1], mpre[i]);
  double ap = 0.;
  for (std::size_t i = 0; i + 1 < n + 2; ++i) {
    if (mrec[i + 1] != mrec[i]) ap += (mrec[i + 1] - mrec[i]) * mpre[i + 1];
  }
  return ap;
}

namespace {

// Detection indices bucketed by class, input order kept within a bucket: class c's detections
// are order[offsets[c], offsets[c + 1]).
struct ClassBuckets {
  std::vector<std::size_t> offsets;  // [num_classes + 1]
  std::vector<std::size_t> order;
};

ClassBuckets bucket_by_class(const std::vector<Detection>& detections, std::size_t num_classes) {
  ClassBuckets b;
  b.offsets.assign(num_classes + 1, 0);
  for (const Detection& d : detections) ++b.offsets[static_cast<std::size_t>(d.label) + 1];
  std::partial_sum(b.offsets.begin(), b.offsets.end(), b.offsets.begin());
  b.order.resize(detections.size());
  std::vector<std::size_t> cursor(b.offsets.begin(), b.offsets.end() - 1);
  for (std::size_t i = 0; i < detections.size(); ++i) {
    b.order[cursor[static_cast<std::size_t>(detections[i].label)]++] = i;
  }
  return b;
}

// Walks class c's ranked detections [first, last) as voc_eval.py does: each takes the
// highest-IoU GT of its image; `taken` marks GTs already matched by a higher-ranked detection.
// Fills the recall / precision curve and the TP / FP / ignored counts of `cr`.
void match_class(std::size_t c, std::vector<std::size_t>::const_iterator first,
                 std::vector<std::size_t>::const_iterator last, const std::vector<Detection>& detections,
                 const GroupedGroundTruth& gt, std::size_t num_images, const VocEvalOptions& options,
                 std::vector<char>& taken, ClassResult& cr) {
  const double npos = static_cast<double>(cr.num_gt);
  double cum_tp = 0., cum_fp = 0.;
  std::size_t rank = 0;
  for (auto it = first; it != last; ++it, ++rank) {
    const Detection& d = detections[*it];
    const std::size_t cell = c * num_images + static_cast<std::size_t>(d.image);
    double ovmax = -std::numeric_limits<double>::infinity();
    std::size_t jmax = 0;
    for (std::size_t j = gt.offsets[cell]; j < gt.offsets[cell + 1]; ++j) {
      const double ov = voc_iou(d.box, gt.boxes[j]);
      if (ov > ovmax) {  // strict: the first GT of maximum IoU wins, as np.argmax
        ovmax = ov;
        jmax = j;
      }
    }
    const bool match = options.inclusive_threshold ? ovmax >= options.iou_threshold : ovmax > options.iou_threshold;
    if (match) {
      if (gt.difficult[jmax]) {
        ++cr.ignored;  // tp = fp = 0: the point repeats the previous one
      } else if (!taken[jmax]) {
        taken[jmax] = 1;
        cum_tp += 1.;
      } else {
        cum_fp += 1.;  // duplicate of an already matched GT
      }
    } else {
      cum_fp += 1.;
    }
    cr.recall[rank] = cum_tp / npos;  // NaN (0/0) or inf never reaches the AP: see evaluate_voc
    cr.precision[rank] = cum_tp / std::max(cum_tp + cum_fp, kPrecisionEps);
  }
  cr.true_positives = static_cast<int>(cum_tp);
  cr.false_positives = static_cast<int>(cum_fp);
}

}  // namespace

MapResult evaluate_voc(const std::vector<std::vector<GroundTruthBox>>& ground_truth,
                       const std::vector<Detection>& detections, const std::vector<std::string>& class_names,
                       const VocEvalOptions& options) {
  if (!std::isfinite(options.iou_threshold)) {
    throw Error("evaluate_voc: iou_threshold must be finite");
  }
  const std::size_t num_images = ground_truth.size();
  const std::size_t num_classes = class_names.size();
  validate_detections(detections, num_images, num_classes);
  const GroupedGroundTruth gt = group_ground_truth(ground_truth, num_classes);
  ClassBuckets buckets = bucket_by_class(detections, num_classes);

  std::vector<char> taken(gt.boxes.size(), 0);
  MapResult result;
  result.metric = options.metric;
  result.iou_threshold = options.iou_threshold;
  result.inclusive_threshold = options.inclusive_threshold;
  result.images = static_cast<int>(num_images);
  result.detections = static_cast<int>(detections.size());
  result.per_class.resize(num_classes);

  double ap_sum = 0.;
  int evaluated = 0;
  for (std::size_t c = 0; c < num_classes; ++c) {
    const auto first = buckets.order.begin() + static_cast<std::ptrdiff_t>(buckets.offsets[c]);
    const auto last = buckets.order.begin() + static_cast<std::ptrdiff_t>(buckets.offsets[c + 1]);
    // The sort being stable is what fixes the order of equal scores (documented in the header).
    std::stable_sort(first, last,
                     [&detections](std::size_t a, std::size_t b) { return detections[a].score > detections[b].score; });

    ClassResult& cr = result.per_class[c];
    cr.name = class_names[c];
    cr.num_gt = gt.non_difficult_per_class[c];
    cr.num_difficult = gt.difficult_per_class[c];
    cr.num_detections = static_cast<int>(last - first);
    cr.recall.resize(static_cast<std::size_t>(cr.num_detections));
    cr.precision.resize(static_cast<std::size_t>(cr.num_detections));
    match_class(c, first, last, detections, gt, num_images, options, taken, cr);

    if (cr.num_gt == 0) {
      // voc_eval divides by npos = 0 here and returns a meaningless AP; a class without
      // ground truth has no recall, so its AP is undefined and it stays out of the mean.
      std::fill(cr.recall.begin(), cr.recall.end(), std::numeric_limits<double>::quiet_NaN());
      cr.ap = std::numeric_limits<double>::quiet_NaN();
      continue;
    }
    cr.ap = average_precision(cr.recall, cr.precision, options.metric);
    ap_sum += cr.ap;
    ++evaluated;
  }
  result.evaluated_classes = evaluated;
  result.map = evaluated > 0 ? ap_sum / evaluated : std::numeric_limits<double>::quiet_NaN();
  return result;
}

}  // namespace yolo2::eval
