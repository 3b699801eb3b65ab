#include "yolo2/train/optimizer.hpp"

#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include <tuple>
#include <vector>

namespace yolo2::train {

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
    return std::make_unique<torch::optim::SGD>(std::move(groups), SGDOptions(t.lr).momentum(t.momentum));
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
