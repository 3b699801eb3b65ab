// darknet's region loss in three parts: target assignment (region_targets.cpp), the loss terms and
// the diagnostics (yolov2-reference.md §2.2-§2.3).
#include "yolo2/loss/region_loss.hpp"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <algorithm>
#include <limits>
#include <numeric>

#include "yolo2/loss/focal_loss.hpp"
#include "yolo2/ops/boxes.hpp"
#include "yolo2/ops/region_coder.hpp"

namespace yolo2::loss {

TargetOptions RegionLossOptions::targets() const {
  TargetOptions t;
  t.anchors = anchors;
  t.num_classes = num_classes;
  t.coord_scale = coord_scale;
  t.small_box_weight = small_box_weight;
  t.max_boxes = max_boxes;
  return t;
}

std::vector<double> inverse_frequency_alpha(const std::vector<int>& objects_per_class) {
  std::vector<double> w(objects_per_class.size(), 0.0);
  double max_w = 0;
  for (std::size_t c = 0; c < w.size(); ++c)
    if (objects_per_class[c] > 0) max_w = std::max(max_w, w[c] = 1.0 / objects_per_class[c]);
  if (max_w == 0) return std::vector<double>(w.size(), 1.0);
  for (auto& x : w)
    if (x == 0) x = max_w;
  const double mean = std::accumulate(w.begin(), w.end(), 0.0) / static_cast<double>(w.size());
  for (auto& x : w) x /= mean;
  return w;
}

at::Tensor class_term(const at::Tensor& logits, const at::Tensor& labels, const ClassTermOptions& o) {
  switch (o.kind) {
    case ClassLoss::CrossEntropy:
      return focal_loss(logits, labels, {0.0, {}, Reduction::Sum});
    case ClassLoss::Focal:
      return focal_loss(logits, labels, {o.gamma, o.alpha, Reduction::Sum});
    case ClassLoss::SigmoidFocal: {
      SigmoidFocalLossOptions so;
      so.gamma = o.gamma;
      so.alpha = o.sigmoid_alpha;
      so.class_weight = o.alpha;
      so.reduction = Reduction::Sum;
      return sigmoid_focal_loss(logits, at::one_hot(labels, logits.size(1)).to(at::kFloat), so);
    }
  }
  throw std::logic_error("class_term: unknown ClassLoss");
}

namespace {

// The five sums, before the division by the batch size.
struct Terms {
  at::Tensor coord, object, noobject, cls, warmup;
};

// One row of class logits per prediction, [B*A*H*W, C] (a copy: made once, used by the class term
// and the diagnostics).
at::Tensor class_rows(const ops::RegionParts& p) {
  return p.logits.permute({0, 1, 3, 4, 2}).reshape({-1, p.logits.size(2)});
}

Terms loss_terms(const ops::RegionParts& p, const at::Tensor& pred, const at::Tensor& rows, const RegionTargets& t,
                 int64_t seen, double gamma, const RegionLossOptions& o) {
  const auto fopt = p.x.options().dtype(at::kFloat);
  const at::IntArrayRef shape = p.x.sizes();  // [B, A, H, W]
  // No-object test: best IoU of each prediction with any ground truth of its image <= thresh.
  const at::Tensor ious = ops::elementwise_iou_cxcywh(pred.unsqueeze(2), t.image_boxes.unsqueeze(1))
                              .masked_fill(~t.image_valid.unsqueeze(1), 0);
  const at::Tensor negative = (std::get<0>(ious.max(2)) <= o.thresh).view(shape);
  at::Tensor responsible = at::zeros({p.x.numel()}, fopt.dtype(at::kBool));
  const int64_t r_n = t.flat.numel();
  if (r_n > 0) responsible.index_fill_(0, t.flat, true);
  const at::Tensor others = ~responsible.view(shape);

  Terms terms;
  terms.noobject = 0.5 * o.noobject_scale * (p.obj.square() * (negative & others)).sum();
  terms.warmup = at::zeros({}, fopt);
  if (seen < o.warmup_images && o.warmup_scale > 0)
    terms.warmup = 0.5 * o.warmup_scale *
                   (((p.x - 0.5).square() + (p.y - 0.5).square() + p.w.square() + p.h.square()) * others).sum();
  terms.coord = terms.object = terms.cls = at::zeros({}, fopt);
  if (r_n == 0) return terms;
  const auto at_flat = [&](const at::Tensor& x) { return x.reshape(-1).index_select(0, t.flat); };
  const at::Tensor c = t.coords;
  terms.coord = 0.5 * (t.weight * ((at_flat(p.x) - c.select(1, 0)).square() + (at_flat(p.y) - c.select(1, 1)).square() +
                                   (at_flat(p.w) - c.select(1, 2)).square() + (at_flat(p.h) - c.select(1, 3)).square()))
                          .sum();
  at::Tensor obj_target = at::ones({r_n}, fopt);
  if (o.rescore) obj_target = ops::elementwise_iou_cxcywh(pred.view({-1, 4}).index_select(0, t.flat), t.boxes);
  terms.object = 0.5 * o.object_scale * (obj_target - at_flat(p.obj)).square().sum();
  ClassTermOptions co;
  co.kind = o.classification;
  co.gamma = gamma;
  co.alpha = o.alpha;
  co.sigmoid_alpha = o.sigmoid_alpha;
  terms.cls = o.class_scale * class_term(rows.index_select(0, t.flat), t.labels, co);
  return terms;
}

// darknet's "Region Avg IOU / Class / Obj / No Obj / Avg Recall / count", per ground truth (each one
// counted, overwritten or not), with the terms: RegionLossResult::scalars, on the device; copied to
// the host in one transfer when `host` (RegionLossOptions::host_scalars).
void diagnostics(const ops::RegionParts& p, const at::Tensor& pred, const at::Tensor& rows, const RegionTargets& t,
                 const Terms& terms, double inv_b, bool host, RegionLossResult& res) {
  at::NoGradGuard no_grad;
  const auto f64 = p.obj.options().dtype(at::kDouble);
  const at::Tensor sums = at::stack({terms.coord.detach(), terms.object.detach(), terms.noobject.detach(),
                                     terms.cls.detach(), terms.warmup.detach()})
                              .to(at::kDouble) *
                          inv_b;
  const at::Tensor avg_noobj = p.obj.detach().mean().to(at::kDouble).reshape({1});
  res.count = t.all_flat.numel();
  at::Tensor per_truth = at::zeros({5}, f64);  // 0 when there is no ground truth
  if (res.count > 0) {
    const at::Tensor giou = ops::elementwise_iou_cxcywh(pred.view({-1, 4}).index_select(0, t.all_flat), t.all_boxes);
    const at::Tensor probs =
        at::softmax(rows.detach().index_select(0, t.all_flat), 1).gather(1, t.all_labels.unsqueeze(1)).squeeze(1);
    per_truth = at::stack({giou.mean(), probs.mean(), p.obj.detach().reshape(-1).index_select(0, t.all_flat).mean(),
                           (giou > 0.5).to(at::kFloat).mean(), (giou > 0.75).to(at::kFloat).mean()})
                    .to(at::kDouble);
  }
  res.scalars = named_scalars(region_loss_scalars(), {{"coord", sums[0]},
                                                      {"object", sums[1]},
                                                      {"noobject", sums[2]},
                                                      {"class", sums[3]},
                                                      {"warmup", sums[4]},
                                                      {"avg_iou", per_truth[0]},
                                                      {"avg_class", per_truth[1]},
                                                      {"avg_obj", per_truth[2]},
                                                      {"avg_noobj", avg_noobj},
                                                      {"recall50", per_truth[3]},
                                                      {"recall75", per_truth[4]}});
  if (!host) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    res.coord = res.object = res.noobject = res.cls = res.warmup = nan;
    res.avg_iou = res.avg_class = res.avg_obj = res.avg_noobj = res.recall50 = res.recall75 = nan;
    return;
  }
  const at::Tensor h = res.scalars.values.to(at::kCPU).contiguous();
  const ScalarSpecs& specs = region_loss_scalars();
  const auto v = [&](const char* name) { return h.data_ptr<double>()[scalar_index(specs, name)]; };
  res.coord = v("coord"), res.object = v("object"), res.noobject = v("noobject"), res.cls = v("class");
  res.warmup = v("warmup");
  res.avg_iou = v("avg_iou"), res.avg_class = v("avg_class"), res.avg_obj = v("avg_obj");
  res.avg_noobj = v("avg_noobj"), res.recall50 = v("recall50"), res.recall75 = v("recall75");
}

}  // namespace

const ScalarSpecs& region_loss_scalars() {
  using R = ScalarKind;
  static const ScalarSpecs specs{
      {"coord", R::Term},         {"object", R::Term},        {"noobject", R::Term},       {"class", R::Term},
      {"warmup", R::Term, false}, {"avg_iou", R::CountMean},  {"avg_class", R::CountMean}, {"avg_obj", R::CountMean},
      {"avg_noobj", R::Mean},     {"recall50", R::CountMean}, {"recall75", R::CountMean},
  };
  return specs;
}

RegionLossResult region_loss(const torch::Tensor& raw, const torch::Tensor& boxes, const torch::Tensor& labels,
                             const torch::Tensor& counts, int64_t seen, double gamma, const RegionLossOptions& o) {
  const auto a_n = static_cast<int64_t>(o.anchors.size() / 2);
  const ops::RegionParts parts = ops::split_region(raw, a_n, o.num_classes);
  const int64_t b_n = raw.size(0), h_n = raw.size(2), w_n = raw.size(3);
  TORCH_CHECK(boxes.dim() == 3 && boxes.size(0) == b_n && boxes.size(2) == 4, "region_loss: boxes must be [B, M, 4]");
  const RegionTargets targets = assign_targets(boxes, labels, counts, h_n, w_n, o.targets()).to(raw.device());
  at::Tensor pred;  // [B, A*H*W, 4] normalised centre-size, no gradient
  {
    at::NoGradGuard no_grad;
    pred = ops::decode_boxes(parts, o.anchors).view({b_n, a_n * h_n * w_n, 4});
  }
  const at::Tensor rows = class_rows(parts);
  const Terms terms = loss_terms(parts, pred, rows, targets, seen, gamma, o);
  const double inv_b = 1.0 / static_cast<double>(b_n);
  RegionLossResult res;
  res.total = (terms.coord + terms.object + terms.noobject + terms.cls + terms.warmup) * inv_b;
  diagnostics(parts, pred, rows, targets, terms, inv_b, o.host_scalars, res);
  return res;
}

}  // namespace yolo2::loss
