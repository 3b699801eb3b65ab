// The optimizer of a training run, with darknet's weight-decay rule.
#pragma once

#include <torch/optim/optimizer.h>

#include <memory>

#include "yolo2/config.hpp"
#include "yolo2/model/yolov2.hpp"

namespace yolo2::train {

// SGD (darknet) or Adam (train.momentum is beta1). Convolution weights decay; biases and batch-norm
// parameters do not (darknet's update_convolutional_layer).
std::unique_ptr<torch::optim::Optimizer> make_optimizer(model::YoloV2Impl& model, const TrainConfig& train);

// Sets the learning rate of every parameter group.
void set_lr(torch::optim::Optimizer& optimizer, double lr);

}  // namespace yolo2::train
