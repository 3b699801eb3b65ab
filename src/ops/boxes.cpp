// IoU in its forms, box conversions and NMS (torchvision ops/boxes.py and csrc/ops/cpu/nms_kernel.cpp
// semantics for the continuous forms; voc_eval.py for the VOC one), on raw float arrays first and
// tensors last.
#include "yolo2/ops/boxes.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "yolo2/error.hpp"

namespace yolo2::ops {
namespace {

// Rank order: descending score, NaN last; the caller uses a stable sort so ties keep input order.
struct ScoreGreater {
  const float* scores;
  bool operator()(int64_t i, int64_t j) const {
    const float a = scores[i], b = scores[j];
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
    return a > b;
  }
};

std::vector<int64_t> rank_by_score(const float* scores, int64_t n) {
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), ScoreGreater{scores});
  return order;
}

// IoU from precomputed areas: the same float expression as box_iou, without recomputing areas
// in the O(n^2) loop.
inline float iou_with_areas(const float* a, float area_a, const float* b, float area_b) {
  const float w = std::max(0.f, std::min(a[2], b[2]) - std::max(a[0], b[0]));
  const float h = std::max(0.f, std::min(a[3], b[3]) - std::max(a[1], b[1]));
  const float inter = w * h;
  const float uni = area_a + area_b - inter;
  return uni > 0.f ? inter / uni : 0.f;
}

// Greedy suppression over `group` (indices already in rank order); sets keep[i] for survivors.
// suppressed[] is scratch shared by all groups, indexed like the boxes.
void suppress_group(const float* boxes, const std::vector<float>& areas, const int64_t* group, std::size_t m,
                    float iou_threshold, std::vector<char>& suppressed, std::vector<char>& keep) {
  for (std::size_t a = 0; a < m; ++a) {
    const int64_t i = group[a];
    if (suppressed[static_cast<std::size_t>(i)]) continue;
    keep[static_cast<std::size_t>(i)] = 1;
    const float* bi = boxes + 4 * i;
    const float area_i = areas[static_cast<std::size_t>(i)];
    for (std::size_t b = a + 1; b < m; ++b) {
      const int64_t j = group[b];
      if (suppressed[static_cast<std::size_t>(j)]) continue;
      if (iou_with_areas(bi, area_i, boxes + 4 * j, areas[static_cast<std::size_t>(j)]) > iou_threshold) {
        suppressed[static_cast<std::size_t>(j)] = 1;
      }
    }
  }
}

std::vector<float> areas_of(const float* boxes, int64_t n) {
  std::vector<float> areas(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) areas[static_cast<std::size_t>(i)] = box_area(boxes + 4 * i);
  return areas;
}

std::vector<int64_t> kept_in_rank_order(const std::vector<int64_t>& order, const std::vector<char>& keep) {
  std::vector<int64_t> out;
  for (int64_t i : order) {
    if (keep[static_cast<std::size_t>(i)]) out.push_back(i);
  }
  return out;
}

void check_count(int64_t n, const char* what) {
  if (n < 0) throw Error(std::string(what) + ": negative box count " + std::to_string(n));
}

}  // namespace

float box_area(const float* box) { return std::max(0.f, box[2] - box[0]) * std::max(0.f, box[3] - box[1]); }

float box_iou(const float* a, const float* b) { return iou_with_areas(a, box_area(a), b, box_area(b)); }

float shape_iou(float w1, float h1, float w2, float h2) {
  // Halving is exact in binary floating point, so the overlap is exactly min(w1, w2) * min(h1, h2)
  // and the areas exactly w * h, as darknet's box_iou with both centres at 0.
  const float a[4] = {-w1 / 2, -h1 / 2, w1 / 2, h1 / 2}, b[4] = {-w2 / 2, -h2 / 2, w2 / 2, h2 / 2};
  return box_iou(a, b);
}

double voc_iou(const Box& a, const Box& b) {
  const double ixmin = std::max(static_cast<double>(b.x1), static_cast<double>(a.x1));
  const double iymin = std::max(static_cast<double>(b.y1), static_cast<double>(a.y1));
  const double ixmax = std::min(static_cast<double>(b.x2), static_cast<double>(a.x2));
  const double iymax = std::min(static_cast<double>(b.y2), static_cast<double>(a.y2));
  const double iw = std::max(ixmax - ixmin + 1., 0.);
  const double ih = std::max(iymax - iymin + 1., 0.);
  const double inters = iw * ih;
  const double uni = (static_cast<double>(a.x2) - a.x1 + 1.) * (static_cast<double>(a.y2) - a.y1 + 1.) +
                     (static_cast<double>(b.x2) - b.x1 + 1.) * (static_cast<double>(b.y2) - b.y1 + 1.) - inters;
  return inters / uni;
}

std::vector<int64_t> nms(const float* boxes, const float* scores, int64_t n, float iou_threshold) {
  check_count(n, "nms");
  const std::vector<int64_t> order = rank_by_score(scores, n);
  const std::vector<float> areas = areas_of(boxes, n);
  std::vector<char> suppressed(static_cast<std::size_t>(n), 0), keep(static_cast<std::size_t>(n), 0);
  suppress_group(boxes, areas, order.data(), order.size(), iou_threshold, suppressed, keep);
  return kept_in_rank_order(order, keep);
}

std::vector<int64_t> batched_nms(const float* boxes, const float* scores, const int64_t* labels, int64_t n,
                                 float iou_threshold) {
  check_count(n, "batched_nms");
  const std::vector<int64_t> order = rank_by_score(scores, n);
  // A second stable sort by label makes each class a contiguous run that is still in rank
  // order, so every class is suppressed on its own without per-class containers.
  std::vector<int64_t> by_label = order;
  std::stable_sort(by_label.begin(), by_label.end(), [labels](int64_t i, int64_t j) { return labels[i] < labels[j]; });
  const std::vector<float> areas = areas_of(boxes, n);
  std::vector<char> suppressed(static_cast<std::size_t>(n), 0), keep(static_cast<std::size_t>(n), 0);
  std::size_t begin = 0;
  while (begin < by_label.size()) {
    std::size_t end = begin + 1;
    while (end < by_label.size() && labels[by_label[end]] == labels[by_label[begin]]) ++end;
    suppress_group(boxes, areas, by_label.data() + begin, end - begin, iou_threshold, suppressed, keep);
    begin = end;
  }
  return kept_in_rank_order(order, keep);
}

}  // namespace yolo2::ops

// ---- Tensor front ends (the only part of this file that needs ATen ops) ------------------------
namespace yolo2::ops {
namespace {

void check_boxes_scores(const at::Tensor& boxes, const at::Tensor& scores, const char* what) {
  if (boxes.dim() != 2 || boxes.size(1) != 4) {
    throw Error(std::string(what) + ": boxes must be [N, 4], got " + std::to_string(boxes.dim()) + "-d tensor");
  }
  if (scores.dim() != 1 || scores.size(0) != boxes.size(0)) {
    throw Error(std::string(what) + ": scores must be [N] with N = " + std::to_string(boxes.size(0)));
  }
}

at::Tensor cpu_float(const at::Tensor& t) { return t.detach().to(at::kCPU, at::kFloat).contiguous(); }

// The one tensor IoU kernel: corners lo, hi [..., 2] and areas [...] of two broadcastable sets.
at::Tensor iou_of_corners(const at::Tensor& lo_a, const at::Tensor& hi_a, const at::Tensor& area_a,
                          const at::Tensor& lo_b, const at::Tensor& hi_b, const at::Tensor& area_b) {
  // A tiny floor instead of a where(): keeps the backward pass finite for empty unions (where the
  // intersection is 0, so the IoU is 0 either way).
  constexpr double kMinUnion = 1e-12;
  const at::Tensor wh = (at::minimum(hi_a, hi_b) - at::maximum(lo_a, lo_b)).clamp_min(0);
  const at::Tensor inter = wh.select(-1, 0) * wh.select(-1, 1);
  return inter / (area_a + area_b - inter).clamp_min(kMinUnion);
}

void check_labels(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& labels, const char* what) {
  check_boxes_scores(boxes, scores, what);
  if (labels.dim() != 1 || labels.size(0) != boxes.size(0)) {
    throw Error(std::string(what) + ": labels must be [N] with N = " + std::to_string(boxes.size(0)));
  }
  if (labels.is_floating_point() || labels.is_complex()) {
    throw Error(std::string(what) + ": labels must have an integer dtype");
  }
}

// rank_by_score on a device: descending score, NaN last, ties in input order. Two stable sorts:
// NaN flags first (non-NaN ahead), then the score with NaN as -inf, so a NaN ties with -inf and
// stays behind it, as ScoreGreater orders them.
at::Tensor rank_on_device(const at::Tensor& scores) {
  const at::Tensor nan = scores.isnan();
  at::Tensor order = std::get<1>(nan.to(at::kByte).sort(true, 0, false));
  const at::Tensor key = scores.masked_fill(nan, -std::numeric_limits<float>::infinity()).index_select(0, order);
  return order.index_select(0, std::get<1>(key.sort(true, 0, true)));
}

// Greedy scan of one group's suppression matrix `over` [m, m] (row i: the boxes i suppresses if
// kept), host bytes; sets keep[first + i] for the survivors.
void scan_group(const uint8_t* over, int64_t m, int64_t first, std::vector<char>& keep) {
  std::vector<uint8_t> removed(static_cast<std::size_t>(m), 0);
  for (int64_t i = 0; i < m; ++i) {
    if (removed[static_cast<std::size_t>(i)]) continue;
    keep[static_cast<std::size_t>(first + i)] = 1;
    const uint8_t* row = over + i * m;
    for (int64_t j = i + 1; j < m; ++j) removed[static_cast<std::size_t>(j)] |= row[j];
  }
}

at::Tensor to_index_tensor(const std::vector<int64_t>& keep) {
  at::Tensor out = at::empty({static_cast<int64_t>(keep.size())}, at::kLong);
  if (!keep.empty()) std::memcpy(out.data_ptr<int64_t>(), keep.data(), keep.size() * sizeof(int64_t));
  return out;
}

}  // namespace

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  check_boxes_scores(boxes, scores, "nms");
  const at::Tensor b = cpu_float(boxes), s = cpu_float(scores);
  return to_index_tensor(nms(b.data_ptr<float>(), s.data_ptr<float>(), b.size(0), static_cast<float>(iou_threshold)));
}

at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& labels,
                       double iou_threshold) {
  check_labels(boxes, scores, labels, "batched_nms");
  if (boxes.is_cuda()) return batched_nms_on_device(boxes, scores, labels, iou_threshold);
  const at::Tensor b = cpu_float(boxes), s = cpu_float(scores);
  const at::Tensor l = labels.detach().to(at::kCPU, at::kLong).contiguous();
  return to_index_tensor(batched_nms(b.data_ptr<float>(), s.data_ptr<float>(), l.data_ptr<int64_t>(), b.size(0),
                                     static_cast<float>(iou_threshold)));
}

at::Tensor elementwise_iou(const at::Tensor& a, const at::Tensor& b) {
  if (a.dim() < 1 || a.size(-1) != 4 || b.dim() < 1 || b.size(-1) != 4)
    throw Error("elementwise_iou: boxes must be [..., 4]");
  const auto area = [](const at::Tensor& t) {
    return (t.select(-1, 2) - t.select(-1, 0)).clamp_min(0) * (t.select(-1, 3) - t.select(-1, 1)).clamp_min(0);
  };
  return iou_of_corners(a.narrow(-1, 0, 2), a.narrow(-1, 2, 2), area(a), b.narrow(-1, 0, 2), b.narrow(-1, 2, 2),
                        area(b));
}

at::Tensor elementwise_iou_cxcywh(const at::Tensor& a, const at::Tensor& b) {
  if (a.dim() < 1 || a.size(-1) != 4 || b.dim() < 1 || b.size(-1) != 4)
    throw Error("elementwise_iou_cxcywh: boxes must be [..., 4]");
  // darknet's box_iou: corners at centre -/+ size / 2, areas w * h.
  const at::Tensor ca = a.narrow(-1, 0, 2), ha = a.narrow(-1, 2, 2) / 2;
  const at::Tensor cb = b.narrow(-1, 0, 2), hb = b.narrow(-1, 2, 2) / 2;
  return iou_of_corners(ca - ha, ca + ha, a.select(-1, 2) * a.select(-1, 3), cb - hb, cb + hb,
                        b.select(-1, 2) * b.select(-1, 3));
}

at::Tensor box_iou(const at::Tensor& boxes1, const at::Tensor& boxes2) {
  if (boxes1.dim() != 2 || boxes1.size(1) != 4 || boxes2.dim() != 2 || boxes2.size(1) != 4) {
    throw Error("box_iou: boxes must be [N, 4] and [M, 4]");
  }
  return elementwise_iou(boxes1.unsqueeze(1), boxes2.unsqueeze(0));
}

at::Tensor cxcywh_to_xyxy(const at::Tensor& boxes) {
  if (boxes.dim() < 1 || boxes.size(-1) != 4) throw Error("cxcywh_to_xyxy: last dimension must be 4");
  const at::Tensor c = boxes.narrow(-1, 0, 2), half = boxes.narrow(-1, 2, 2) * 0.5;
  return at::cat({c - half, c + half}, -1);
}

at::Tensor xyxy_to_cxcywh(const at::Tensor& boxes) {
  if (boxes.dim() < 1 || boxes.size(-1) != 4) throw Error("xyxy_to_cxcywh: last dimension must be 4");
  const at::Tensor p1 = boxes.narrow(-1, 0, 2), p2 = boxes.narrow(-1, 2, 2);
  return at::cat({(p1 + p2) * 0.5, p2 - p1}, -1);
}

at::Tensor batched_nms_on_device(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& labels,
                                 double iou_threshold) {
  check_labels(boxes, scores, labels, "batched_nms_on_device");
  const int64_t n = boxes.size(0);
  if (n == 0) return at::empty({0}, at::kLong);
  const c10::Device device = boxes.device();
  const at::Tensor rank = rank_on_device(scores.detach().to(device, at::kFloat));
  const at::Tensor lab = labels.detach().to(device, at::kLong);
  // Each label's boxes together, still in rank order (as batched_nms's second stable sort).
  const at::Tensor regroup = std::get<1>(lab.index_select(0, rank).sort(true, 0, false));
  const at::Tensor order = rank.index_select(0, regroup);
  const at::Tensor counts = std::get<2>(at::unique_consecutive(lab.index_select(0, order), false, true));
  const at::Tensor b = boxes.detach().to(at::kFloat).index_select(0, order);
  const at::Tensor x1 = b.select(1, 0), y1 = b.select(1, 1), x2 = b.select(1, 2), y2 = b.select(1, 3);
  const at::Tensor area = (x2 - x1).clamp_min(0) * (y2 - y1).clamp_min(0);  // box_area
  const auto threshold = static_cast<float>(iou_threshold);
  std::vector<char> keep(static_cast<std::size_t>(n), 0);  // in `order` positions
  const at::Tensor counts_host = counts.to(at::kCPU, at::kLong);
  int64_t first = 0;
  for (int64_t g = 0; g < counts_host.size(0); ++g) {
    const int64_t m = counts_host[g].item<int64_t>();
    const auto col = [&](const at::Tensor& t) { return t.narrow(0, first, m).unsqueeze(1); };
    const auto row = [&](const at::Tensor& t) { return t.narrow(0, first, m).unsqueeze(0); };
    // iou_with_areas, element for element: w, h, inter = w * h, union = area_a + area_b - inter.
    const at::Tensor w = (at::minimum(col(x2), row(x2)) - at::maximum(col(x1), row(x1))).clamp_min(0);
    const at::Tensor h = (at::minimum(col(y2), row(y2)) - at::maximum(col(y1), row(y1))).clamp_min(0);
    const at::Tensor inter = w * h;
    const at::Tensor uni = col(area) + row(area) - inter;
    const at::Tensor iou = at::where(uni > 0, inter / uni, at::zeros_like(inter));
    const at::Tensor over = (iou > threshold).triu(1).to(at::kCPU, at::kByte).contiguous();
    scan_group(over.data_ptr<uint8_t>(), m, first, keep);
    first += m;
  }
  // Back to rank order: position k of `order` is rank position regroup[k].
  std::vector<char> keep_rank(static_cast<std::size_t>(n), 0);
  const at::Tensor regroup_host = regroup.to(at::kCPU).contiguous();
  const int64_t* rg = regroup_host.data_ptr<int64_t>();
  for (int64_t k = 0; k < n; ++k) keep_rank[static_cast<std::size_t>(rg[k])] = keep[static_cast<std::size_t>(k)];
  const at::Tensor rank_host = rank.to(at::kCPU).contiguous();
  const int64_t* r = rank_host.data_ptr<int64_t>();
  std::vector<int64_t> out;
  for (int64_t k = 0; k < n; ++k)
    if (keep_rank[static_cast<std::size_t>(k)]) out.push_back(r[k]);
  return to_index_tensor(out);
}

}  // namespace yolo2::ops
