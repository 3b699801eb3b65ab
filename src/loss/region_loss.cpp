#include "yolo2/loss/region_loss.hpp"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "yolo2/error.hpp"
#include "yolo2/loss/focal_loss.hpp"

namespace yolo2::loss {

RegionLossOptions RegionLossOptions::from_config(const Config& c) {
  RegionLossOptions o;
  o.anchors = c.model.anchors;
  o.num_classes = static_cast<int>(c.data.classes.size());
  o.classification = c.loss.classification;
  o.object_scale = c.loss.object_scale;
  o.noobject_scale = c.loss.noobject_scale;
  o.class_scale = c.loss.class_scale;
  o.coord_scale = c.loss.coord_scale;
  o.thresh = c.loss.thresh;
  o.rescore = c.loss.rescore;
  o.small_box_weight = c.loss.small_box_weight;
  o.warmup_images = c.loss.warmup_images;
  o.warmup_scale = c.loss.warmup_scale;
  o.max_boxes = c.data.max_boxes;
  o.sigmoid_alpha = c.loss.focal.sigmoid_alpha;
  const AlphaSpec& a = c.loss.focal.alpha;
  if (a.kind == AlphaSpec::Kind::PerClass)
    o.alpha = at::tensor(a.per_class, at::kFloat);
  else if (a.kind == AlphaSpec::Kind::Scalar && a.scalar != 1.0)
    o.alpha = at::full({o.num_classes}, a.scalar, at::kFloat);
  // Auto: the trainer fills it from the training set (inverse_frequency_alpha).
  return o;
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

namespace {

// darknet box_iou on centre-size boxes [..., 4] (broadcasting).
at::Tensor iou_cxcywh(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor ax = a.select(-1, 0), ay = a.select(-1, 1), aw = a.select(-1, 2), ah = a.select(-1, 3);
  const at::Tensor bx = b.select(-1, 0), by = b.select(-1, 1), bw = b.select(-1, 2), bh = b.select(-1, 3);
  const at::Tensor iw = (at::min(ax + aw / 2, bx + bw / 2) - at::max(ax - aw / 2, bx - bw / 2)).clamp_min(0);
  const at::Tensor ih = (at::min(ay + ah / 2, by + bh / 2) - at::max(ay - ah / 2, by - bh / 2)).clamp_min(0);
  const at::Tensor inter = iw * ih;
  const at::Tensor uni = aw * ah + bw * bh - inter;
  return at::where(uni > 0, inter / uni, at::zeros_like(inter));
}

// One ground truth, assigned on the host from the loader's CPU targets (no device round trip).
struct Assigned {
  int64_t flat;            // ((b * A + n) * H + j) * W + i
  float tx, ty, tw, th;    // darknet's targets
  float scale;             // coord_scale * (2 - w h)
  int64_t label;
  float cx, cy, w, h;      // the box, normalised centre-size
};

}  // namespace

RegionLossResult region_loss(const torch::Tensor& raw, const torch::Tensor& boxes, const torch::Tensor& labels,
                             const torch::Tensor& counts, int64_t seen, double gamma, const RegionLossOptions& o) {
  const int64_t a_n = static_cast<int64_t>(o.anchors.size() / 2), c_n = o.num_classes, e_n = 5 + c_n;
  TORCH_CHECK(raw.dim() == 4 && raw.size(1) == a_n * e_n, "region_loss: output must be [B, ", a_n * e_n,
              ", H, W], got ", raw.sizes());
  const int64_t b_n = raw.size(0), h_n = raw.size(2), w_n = raw.size(3);
  TORCH_CHECK(boxes.dim() == 3 && boxes.size(0) == b_n && boxes.size(2) == 4, "region_loss: boxes must be [B, M, 4]");
  const auto dev = raw.device();
  const auto fopt = raw.options().dtype(at::kFloat);

  const at::Tensor r = raw.view({b_n, a_n, e_n, h_n, w_n});
  const at::Tensor sx = r.select(2, 0).sigmoid(), sy = r.select(2, 1).sigmoid();
  const at::Tensor tw = r.select(2, 2), th = r.select(2, 3);
  const at::Tensor so = r.select(2, 4).sigmoid();  // all [B, A, H, W]

  // Predicted boxes (no gradient): normalised centre-size, [B, A*H*W, 4].
  std::vector<float> aw(static_cast<std::size_t>(a_n)), ah(static_cast<std::size_t>(a_n));
  for (int64_t n = 0; n < a_n; ++n) {
    aw[static_cast<std::size_t>(n)] = static_cast<float>(o.anchors[static_cast<std::size_t>(2 * n)]);
    ah[static_cast<std::size_t>(n)] = static_cast<float>(o.anchors[static_cast<std::size_t>(2 * n + 1)]);
  }
  at::Tensor pred;
  {
    at::NoGradGuard no_grad;
    const at::Tensor gx = at::arange(w_n, fopt).view({1, 1, 1, w_n});
    const at::Tensor gy = at::arange(h_n, fopt).view({1, 1, h_n, 1});
    const at::Tensor taw = at::tensor(aw, at::kFloat).to(dev).view({1, a_n, 1, 1});
    const at::Tensor tah = at::tensor(ah, at::kFloat).to(dev).view({1, a_n, 1, 1});
    pred = at::stack({(sx.detach() + gx) / w_n, (sy.detach() + gy) / h_n, tw.detach().exp() * taw / w_n,
                      th.detach().exp() * tah / h_n},
                     -1)
               .view({b_n, a_n * h_n * w_n, 4});
  }

  // Ground truths on the host: the loader's targets live on the CPU already.
  const at::Tensor boxes_c = boxes.to(at::kCPU, at::kFloat).contiguous();
  const at::Tensor labels_c = labels.to(at::kCPU, at::kLong).contiguous();
  const at::Tensor counts_c = counts.to(at::kCPU, at::kLong).contiguous();
  const int64_t m_n = boxes_c.size(1);
  const float* bp = boxes_c.data_ptr<float>();
  const int64_t* lp = labels_c.data_ptr<int64_t>();
  const int64_t* cp = counts_c.data_ptr<int64_t>();
  const int64_t m_use = std::min<int64_t>(m_n, o.max_boxes);
  std::vector<float> gt(static_cast<std::size_t>(b_n * std::max<int64_t>(m_use, 1) * 4), 0.0f);
  std::vector<uint8_t> gt_valid(static_cast<std::size_t>(b_n * std::max<int64_t>(m_use, 1)), 0);
  std::vector<Assigned> per_gt;        // every ground truth, in darknet's loop order (diagnostics)
  std::vector<std::size_t> winner;     // per (cell, anchor): index into per_gt of the last writer
  std::unordered_map<int64_t, std::size_t> slot;
  for (int64_t b = 0; b < b_n; ++b) {
    const int64_t count = std::min<int64_t>(cp[b], m_use);
    for (int64_t t = 0; t < count; ++t) {
      const float* q = bp + (b * m_n + t) * 4;
      const float w = q[2] - q[0], h = q[3] - q[1];
      if (!(w > 0) || !(h > 0)) continue;
      const float x = (q[0] + q[2]) / 2, y = (q[1] + q[3]) / 2;
      const std::size_t g = static_cast<std::size_t>(b * m_use + t);
      gt[4 * g] = x, gt[4 * g + 1] = y, gt[4 * g + 2] = w, gt[4 * g + 3] = h;
      gt_valid[g] = 1;
      const int64_t i = std::clamp<int64_t>(static_cast<int64_t>(x * static_cast<float>(w_n)), 0, w_n - 1);
      const int64_t j = std::clamp<int64_t>(static_cast<int64_t>(y * static_cast<float>(h_n)), 0, h_n - 1);
      // bias_match: the anchor of best shape-only IoU, the first on ties (darknet's strict >).
      int64_t best_n = 0;
      float best_iou = -1;
      for (int64_t n = 0; n < a_n; ++n) {
        const float pw = aw[static_cast<std::size_t>(n)] / static_cast<float>(w_n);
        const float ph = ah[static_cast<std::size_t>(n)] / static_cast<float>(h_n);
        const float inter = std::min(pw, w) * std::min(ph, h);
        const float iou = inter / (pw * ph + w * h - inter);
        if (iou > best_iou) best_iou = iou, best_n = n;
      }
      Assigned s;
      s.flat = ((b * a_n + best_n) * h_n + j) * w_n + i;
      s.tx = x * static_cast<float>(w_n) - static_cast<float>(i);
      s.ty = y * static_cast<float>(h_n) - static_cast<float>(j);
      s.tw = std::log(w * static_cast<float>(w_n) / aw[static_cast<std::size_t>(best_n)]);
      s.th = std::log(h * static_cast<float>(h_n) / ah[static_cast<std::size_t>(best_n)]);
      s.scale = static_cast<float>(o.coord_scale * (o.small_box_weight ? 2.0 - w * h : 1.0));
      s.label = lp[b * m_n + t];
      TORCH_CHECK(s.label >= 0 && s.label < c_n, "region_loss: label ", s.label, " out of range [0, ", c_n, ")");
      s.cx = x, s.cy = y, s.w = w, s.h = h;
      per_gt.push_back(s);
      const auto [it, inserted] = slot.emplace(s.flat, winner.size());
      if (inserted) winner.push_back(per_gt.size() - 1);
      else winner[it->second] = per_gt.size() - 1;  // a later ground truth overwrites
    }
  }

  // No-object mask: best IoU of each prediction with any ground truth of its image <= thresh.
  // at::tensor copies: autograd may keep these alive after the host vectors are gone.
  const at::Tensor gt_t = at::tensor(gt, at::kFloat).view({b_n, std::max<int64_t>(m_use, 1), 4}).to(dev);
  const at::Tensor valid_t =
      at::tensor(gt_valid, at::kByte).view({b_n, std::max<int64_t>(m_use, 1)}).to(dev).to(at::kBool);
  const at::Tensor ious = iou_cxcywh(pred.unsqueeze(2), gt_t.unsqueeze(1)).masked_fill(~valid_t.unsqueeze(1), 0);
  const at::Tensor best_iou = std::get<0>(ious.max(2));  // [B, N]
  at::Tensor negative = (best_iou <= o.thresh).view({b_n, a_n, h_n, w_n});

  const int64_t r_n = static_cast<int64_t>(winner.size());
  std::vector<int64_t> flat(static_cast<std::size_t>(r_n)), cls(static_cast<std::size_t>(r_n));
  std::vector<float> tgt(static_cast<std::size_t>(r_n * 5)), gbox(static_cast<std::size_t>(r_n * 4));
  for (int64_t k = 0; k < r_n; ++k) {
    const Assigned& s = per_gt[winner[static_cast<std::size_t>(k)]];
    const auto ku = static_cast<std::size_t>(k);
    flat[ku] = s.flat, cls[ku] = s.label;
    tgt[5 * ku] = s.tx, tgt[5 * ku + 1] = s.ty, tgt[5 * ku + 2] = s.tw, tgt[5 * ku + 3] = s.th, tgt[5 * ku + 4] = s.scale;
    gbox[4 * ku] = s.cx, gbox[4 * ku + 1] = s.cy, gbox[4 * ku + 2] = s.w, gbox[4 * ku + 3] = s.h;
  }
  const at::Tensor flat_t = at::tensor(flat, at::kLong).to(dev);
  const at::Tensor cls_t = at::tensor(cls, at::kLong).to(dev);
  const at::Tensor tgt_t = at::tensor(tgt, at::kFloat).view({r_n, 5}).to(dev);
  const at::Tensor gbox_t = at::tensor(gbox, at::kFloat).view({r_n, 4}).to(dev);
  at::Tensor responsible = at::zeros({b_n * a_n * h_n * w_n}, at::TensorOptions().dtype(at::kBool).device(dev));
  if (r_n > 0) responsible.index_fill_(0, flat_t, true);
  responsible = responsible.view({b_n, a_n, h_n, w_n});
  const at::Tensor others = ~responsible;

  RegionLossResult res;
  const double inv_b = 1.0 / static_cast<double>(b_n);
  at::Tensor noobj = 0.5 * o.noobject_scale * (so.square() * (negative & others)).sum();
  at::Tensor warm = at::zeros({}, fopt);
  if (seen < o.warmup_images && o.warmup_scale > 0)
    warm = 0.5 * o.warmup_scale * (((sx - 0.5).square() + (sy - 0.5).square() + tw.square() + th.square()) * others).sum();

  at::Tensor coord = at::zeros({}, fopt), obj = at::zeros({}, fopt), cls_term = at::zeros({}, fopt);
  // [B, A, C, H, W] -> one row of class logits per prediction (a copy: made once, used by the class
  // term and the diagnostics).
  at::Tensor class_rows;
  if (r_n > 0) class_rows = r.narrow(2, 5, c_n).permute({0, 1, 3, 4, 2}).reshape({-1, c_n});
  if (r_n > 0) {
    const at::Tensor sx_r = sx.reshape(-1).index_select(0, flat_t), sy_r = sy.reshape(-1).index_select(0, flat_t);
    const at::Tensor tw_r = tw.reshape(-1).index_select(0, flat_t), th_r = th.reshape(-1).index_select(0, flat_t);
    const at::Tensor so_r = so.reshape(-1).index_select(0, flat_t);
    coord = 0.5 * (tgt_t.select(1, 4) * ((sx_r - tgt_t.select(1, 0)).square() + (sy_r - tgt_t.select(1, 1)).square() +
                                         (tw_r - tgt_t.select(1, 2)).square() + (th_r - tgt_t.select(1, 3)).square()))
                      .sum();
    at::Tensor obj_target = at::ones({r_n}, fopt);
    if (o.rescore) obj_target = iou_cxcywh(pred.view({-1, 4}).index_select(0, flat_t), gbox_t);
    obj = 0.5 * o.object_scale * (obj_target - so_r).square().sum();
    const at::Tensor logits = class_rows.index_select(0, flat_t);
    switch (o.classification) {
      case ClassLoss::CrossEntropy:
        cls_term = focal_loss(logits, cls_t, {0.0, {}, Reduction::Sum});
        break;
      case ClassLoss::Focal:
        cls_term = focal_loss(logits, cls_t, {gamma, o.alpha, Reduction::Sum});
        break;
      case ClassLoss::SigmoidFocal: {
        SigmoidFocalLossOptions so_opts;
        so_opts.gamma = gamma;
        so_opts.alpha = o.sigmoid_alpha;
        so_opts.class_weight = o.alpha;
        so_opts.reduction = Reduction::Sum;
        cls_term = sigmoid_focal_loss(logits, at::one_hot(cls_t, c_n).to(at::kFloat), so_opts);
        break;
      }
    }
    cls_term = o.class_scale * cls_term;
  }
  res.total = (coord + obj + noobj + cls_term + warm) * inv_b;

  // Diagnostics, per ground truth (darknet counts every one, overwritten or not), in one transfer.
  {
    at::NoGradGuard no_grad;
    const int64_t g_n = static_cast<int64_t>(per_gt.size());
    at::Tensor stats = at::stack({coord.detach(), obj.detach(), noobj.detach(), cls_term.detach(), warm.detach(),
                                  so.detach().mean()})
                           .to(at::kCPU, at::kDouble);
    const double* sp = stats.data_ptr<double>();
    res.coord = sp[0] * inv_b, res.object = sp[1] * inv_b, res.noobject = sp[2] * inv_b;
    res.cls = sp[3] * inv_b, res.warmup = sp[4] * inv_b, res.avg_noobj = sp[5];
    res.count = g_n;
    if (g_n > 0) {
      std::vector<int64_t> gflat(static_cast<std::size_t>(g_n)), glab(static_cast<std::size_t>(g_n));
      std::vector<float> gb(static_cast<std::size_t>(g_n * 4));
      for (int64_t k = 0; k < g_n; ++k) {
        const auto& s = per_gt[static_cast<std::size_t>(k)];
        const auto ku = static_cast<std::size_t>(k);
        gflat[ku] = s.flat, glab[ku] = s.label;
        gb[4 * ku] = s.cx, gb[4 * ku + 1] = s.cy, gb[4 * ku + 2] = s.w, gb[4 * ku + 3] = s.h;
      }
      const at::Tensor gf = at::tensor(gflat, at::kLong).to(dev);
      const at::Tensor gl = at::tensor(glab, at::kLong).to(dev);
      const at::Tensor giou = iou_cxcywh(pred.view({-1, 4}).index_select(0, gf),
                                         at::tensor(gb, at::kFloat).view({g_n, 4}).to(dev));
      const at::Tensor probs = at::softmax(class_rows.detach().index_select(0, gf), 1)
                                   .gather(1, gl.unsqueeze(1))
                                   .squeeze(1);
      const at::Tensor d = at::stack({giou.mean(), probs.mean(), so.detach().reshape(-1).index_select(0, gf).mean(),
                                      (giou > 0.5).to(at::kFloat).mean(), (giou > 0.75).to(at::kFloat).mean()})
                               .to(at::kCPU, at::kDouble);
      const double* dp = d.data_ptr<double>();
      res.avg_iou = dp[0], res.avg_class = dp[1], res.avg_obj = dp[2], res.recall50 = dp[3], res.recall75 = dp[4];
    }
  }
  return res;
}

}  // namespace yolo2::loss
