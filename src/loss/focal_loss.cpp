#include "yolo2/loss/focal_loss.hpp"

#include <ATen/ATen.h>

namespace yolo2::loss {

namespace {

// (1 - p)^gamma from log p, safe at p -> 1: 1 - p is computed as -expm1(log p), exact where
// 1 - exp() would round to 0, and floored at a tiny positive value so that pow's derivative
// gamma * x^(gamma - 1) stays finite for gamma < 1 (where it would otherwise be 0 * inf = NaN).
at::Tensor modulating_factor(const at::Tensor& log_p, double gamma) {
  constexpr double kFloor = 1e-12;
  const at::Tensor one_minus_p = (-at::expm1(log_p)).clamp_min(kFloor);
  return at::pow(one_minus_p, gamma);
}

at::Tensor reduce(const at::Tensor& per_item, Reduction reduction) {
  switch (reduction) {
    case Reduction::None:
      return per_item;
    case Reduction::Sum:
      return per_item.sum();
    case Reduction::Mean:
      break;
  }
  return per_item.mean();
}

}  // namespace

torch::Tensor focal_loss(const torch::Tensor& logits, const torch::Tensor& targets, const FocalLossOptions& o) {
  TORCH_CHECK(logits.dim() == 2, "focal_loss: logits must be [N, C], got ", logits.sizes());
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == logits.size(0) && targets.scalar_type() == at::kLong,
              "focal_loss: targets must be int64 [N] with N = ", logits.size(0), ", got ", targets.sizes(), " ",
              targets.scalar_type());
  TORCH_CHECK(o.gamma >= 0, "focal_loss: gamma must be >= 0, got ", o.gamma);
  // log_softmax, never log(softmax): the latter is -inf once p_t underflows.
  const at::Tensor log_p = at::log_softmax(logits, 1).gather(1, targets.unsqueeze(1)).squeeze(1);
  at::Tensor loss = -log_p;
  if (o.gamma != 0) loss = loss * modulating_factor(log_p, o.gamma);
  if (o.alpha.defined()) {
    TORCH_CHECK(o.alpha.dim() == 1 && o.alpha.size(0) == logits.size(1),
                "focal_loss: alpha must be [C] with C = ", logits.size(1), ", got ", o.alpha.sizes());
    loss = loss * o.alpha.to(loss.options()).gather(0, targets);
  }
  return reduce(loss, o.reduction);
}

torch::Tensor sigmoid_focal_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                 const SigmoidFocalLossOptions& o) {
  TORCH_CHECK(logits.sizes() == targets.sizes(), "sigmoid_focal_loss: logits ", logits.sizes(), " and targets ",
              targets.sizes(), " must have the same shape");
  TORCH_CHECK(o.gamma >= 0, "sigmoid_focal_loss: gamma must be >= 0, got ", o.gamma);
  const at::Tensor y = targets.to(logits.options());
  const at::Tensor ce = at::binary_cross_entropy_with_logits(logits, y, {}, {}, at::Reduction::None);
  at::Tensor loss = ce;
  if (o.gamma != 0) {
    // 1 - p_t with p_t = p y + (1 - p)(1 - y) (torchvision, linear in soft targets), written with
    // sigmoid(-x) = 1 - sigmoid(x) so that it does not round to 0 for confident logits.
    const at::Tensor one_minus_pt = (at::sigmoid(-logits) * y + at::sigmoid(logits) * (1 - y)).clamp_min(1e-12);
    loss = loss * at::pow(one_minus_pt, o.gamma);
  }
  if (o.alpha >= 0) loss = loss * (o.alpha * y + (1 - o.alpha) * (1 - y));
  if (o.class_weight.defined()) {
    TORCH_CHECK(logits.dim() == 2 && o.class_weight.dim() == 1 && o.class_weight.size(0) == logits.size(1),
                "sigmoid_focal_loss: class_weight must be [C]");
    // Each row weighted by the weight of its target class (the argmax of a one-hot row).
    loss = loss * o.class_weight.to(loss.options()).gather(0, y.argmax(1)).unsqueeze(1);
  }
  return reduce(loss, o.reduction);
}

}  // namespace yolo2::loss
