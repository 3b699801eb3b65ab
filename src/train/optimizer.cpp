#include "yolo2/train/optimizer.hpp"

#include <ATen/ATen.h>
#include <torch/optim/adam.h>

#include <tuple>
#include <vector>

#include "../compat/optim.hpp"

namespace yolo2::train {

at::Tensor ForeachSGD::step(LossClosure closure) {
  at::NoGradGuard no_grad;
  at::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
    std::vector<at::Tensor> params, grads;
    for (const auto& p : group.params())
      if (p.grad().defined()) {
        params.push_back(p);
        grads.push_back(p.grad());
      }
    if (params.empty()) continue;
    // d = grad + weight_decay * p (a new list: the gradients themselves are left as they are).
    std::vector<at::Tensor> d = o.weight_decay() != 0 ? at::_foreach_add(grads, params, o.weight_decay()) : grads;
    if (o.momentum() != 0) {
      // buf = momentum * buf + (1 - dampening) * d; a parameter's first step starts it at d.
      std::vector<at::Tensor> bufs(params.size()), old_bufs, old_d;
      for (std::size_t i = 0; i < params.size(); ++i) {
        auto& slot = state_[compat::optimizer_state_key(state_, params[i])];
        if (!slot) {
          bufs[i] = d[i].clone().detach();
          auto st = std::make_unique<torch::optim::SGDParamState>();
          st->momentum_buffer(bufs[i]);
          slot = std::move(st);
          continue;
        }
        bufs[i] = static_cast<torch::optim::SGDParamState&>(*slot).momentum_buffer();
        old_bufs.push_back(bufs[i]);
        old_d.push_back(d[i]);
      }
      if (!old_bufs.empty()) {
        at::_foreach_mul_(old_bufs, o.momentum());
        at::_foreach_add_(old_bufs, old_d, 1 - o.dampening());
      }
      d = o.nesterov() ? at::_foreach_add(d, bufs, o.momentum()) : bufs;
    }
    at::_foreach_add_(params, d, -1 * o.lr());
  }
  return loss;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(model::YoloV2Impl& m, const TrainConfig& t) {
  std::vector<at::Tensor> decay, no_decay;
  for (std::size_t k = 0; k < m.convs().size(); ++k) {
    decay.push_back(m.convs()[k]->weight);
    if (m.convs()[k]->bias.defined()) no_decay.push_back(m.convs()[k]->bias);
    if (!m.norms()[k].is_empty()) {
      no_decay.push_back(m.norms()[k]->weight);
      no_decay.push_back(m.norms()[k]->bias);
    }
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (t.optimizer == OptimizerKind::Sgd) {
    using torch::optim::SGDOptions;
    groups.emplace_back(decay,
                        std::make_unique<SGDOptions>(SGDOptions(t.lr).momentum(t.momentum).weight_decay(t.decay)));
    groups.emplace_back(no_decay, std::make_unique<SGDOptions>(SGDOptions(t.lr).momentum(t.momentum).weight_decay(0)));
    return std::make_unique<ForeachSGD>(std::move(groups), SGDOptions(t.lr).momentum(t.momentum));
  }
  // Adam: weight decay as L2 on the convolution weights.
  using torch::optim::AdamOptions;
  const auto betas = std::make_tuple(t.momentum, 0.999);
  groups.emplace_back(decay, std::make_unique<AdamOptions>(AdamOptions(t.lr).betas(betas).weight_decay(t.decay)));
  groups.emplace_back(no_decay, std::make_unique<AdamOptions>(AdamOptions(t.lr).betas(betas).weight_decay(0)));
  return std::make_unique<torch::optim::Adam>(std::move(groups), AdamOptions(t.lr).betas(betas));
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) g.options().set_lr(lr);
}

}  // namespace yolo2::train
