// Focal loss (Lin et al. 2017; yolov2-reference.md §5): the softmax form used as YOLOv2's class term
// and the sigmoid (RetinaNet) form. Both are numerically safe for every gamma >= 0 (fractional
// gammas included, as a gamma schedule passes through them) and for saturated logits.
#pragma once

#include <torch/types.h>

namespace yolo2::loss {

enum class Reduction { None, Mean, Sum };

struct FocalLossOptions {
  double gamma = 2.0;
  torch::Tensor alpha;  // [C] per-class weights; undefined means all ones
  Reduction reduction = Reduction::Mean;
};

// -alpha[t] * (1 - p_t)^gamma * log p_t with p = softmax(logits); logits [N, C], targets [N] int64.
// gamma = 0 with alpha undefined is exactly cross-entropy (values and gradients).
torch::Tensor focal_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                         const FocalLossOptions& options = {});

struct SigmoidFocalLossOptions {
  double gamma = 2.0;
  // torchvision's positive/negative balance: alpha_t = alpha for y = 1, 1 - alpha for y = 0;
  // a negative value disables it.
  double alpha = -1.0;
  torch::Tensor class_weight;  // [C] extra per-class weight of each row's target class; optional
  Reduction reduction = Reduction::Mean;
};

// torchvision.ops.sigmoid_focal_loss semantics: logits [N, C], targets [N, C] float in [0, 1]
// (one-hot for classification); elementwise loss BCE(p, y) * (1 - p_t)^gamma * alpha_t, reduced.
torch::Tensor sigmoid_focal_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                 const SigmoidFocalLossOptions& options = {});

}  // namespace yolo2::loss
