// The optimizer of a training run, with darknet's weight-decay rule.
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/optim/sgd.h>

#include <memory>

#include "yolo2/config.hpp"
#include "yolo2/model/yolov2.hpp"

namespace yolo2::train {

// torch::optim::SGD's update with multi-tensor (`_foreach_`) ops: per parameter group, one weight-decay
// add, one momentum update and one parameter update over all its tensors (a few fused kernels on
// CUDA instead of several per parameter). Same arithmetic in the same order, the same state
// (SGDParamState's momentum_buffer under the same keys), so its checkpoints load into torch's SGD
// and back; on the CPU the result equals torch's SGD bit for bit (tests/test_train.cpp).
class ForeachSGD : public torch::optim::SGD {
 public:
  using torch::optim::SGD::SGD;
  at::Tensor step(LossClosure closure = nullptr) override;
};

// SGD (darknet; ForeachSGD) or Adam (train.momentum is beta1). Convolution weights decay; biases and batch-norm
// parameters do not (darknet's update_convolutional_layer).
std::unique_ptr<torch::optim::Optimizer> make_optimizer(model::YoloV2Impl& model, const TrainConfig& train);

// Sets the learning rate of every parameter group.
void set_lr(torch::optim::Optimizer& optimizer, double lr);

}  // namespace yolo2::train
