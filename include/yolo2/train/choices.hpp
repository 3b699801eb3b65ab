// The trainer's choices (config: train.policy, loss.focal.gamma_schedule.type, train.optimizer).
#pragma once

namespace yolo2::train {

enum class LrPolicy { Steps, Cosine, Constant, Poly };
enum class GammaScheduleType { Constant, Step, Linear, Cosine };
enum class OptimizerKind { Sgd, Adam };

}  // namespace yolo2::train
