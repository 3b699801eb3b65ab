// Mixed precision for training (runtime.precision): what each setting means on a device, the
// autocast scope around the network's forward pass, and dynamic loss scaling for fp16. Weights,
// optimizer state and the region loss stay fp32 in every setting, so a checkpoint resumes in any
// precision and evaluates on the CPU.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <vector>

#include "yolo2/model/autocast_scope.hpp"
#include "yolo2/runtime/choices.hpp"

namespace yolo2::runtime {

struct PrecisionPlan {
  Precision precision = Precision::Fp32;
  bool autocast = false;              // bf16, fp16: the forward pass runs under autocast
  at::ScalarType dtype = at::kFloat;  // autocast's lower-precision type
  bool loss_scaling = false;          // fp16: dynamic loss scaling (LossScale)
};

// What `precision` means on `device`, checked: tf32 and fp16 need CUDA, bf16 needs a GPU of
// compute capability 8.0 or later (on the CPU it runs through oneDNN, with a warning where the
// processor has no bf16 instructions). Throws yolo2::Error naming runtime.precision otherwise.
// Sets the process-wide TF32 switches of cuBLAS and cuDNN: on for tf32 only (LibTorch leaves TF32
// on in cuDNN by default, so fp32 turns it off); and cudnn.benchmark on for a CUDA device.
PrecisionPlan setup_precision(Precision precision, const c10::Device& device);

// The network's forward pass under autocast in `plan`'s type, as a scope (a no-op for fp32 and tf32):
// model::AutocastScope.
class AutocastScope : public model::AutocastScope {
 public:
  AutocastScope(const PrecisionPlan& plan, c10::DeviceType device)
      : model::AutocastScope(plan.autocast ? plan.dtype : at::kFloat, device) {}
};

// Dynamic loss scaling, with torch.amp.GradScaler's rule and defaults: the loss is multiplied by
// `scale` before the backward pass, the gradients divided by it before the optimizer step; a step
// whose gradients hold an inf or NaN is skipped and the scale halved; after 2,000 good steps in a
// row the scale doubles. The scale is a power of two, so scaling and unscaling are exact. Part of
// the checkpointed TrainState.
struct LossScale {
  static constexpr double kInitial = 65536.0, kGrowth = 2.0, kBackoff = 0.5;
  static constexpr int64_t kGrowthInterval = 2000;
  double scale = kInitial;
  int64_t good_steps = 0;  // finite steps since the scale last changed
  int64_t skipped = 0;     // steps skipped for overflow over the whole run
};

// Divides every defined gradient by `scale`; true when all of them are finite afterwards. One
// host synchronisation (the verdict), as GradScaler.step has. On CUDA one fused multi-tensor kernel
// (_amp_foreach_non_finite_check_and_unscale_, as GradScaler), not a kernel or two per parameter.
bool unscale_gradients(const std::vector<at::Tensor>& params, double scale);

// After a step: a skipped one (finite == false) halves the scale and counts; kGrowthInterval
// finite ones in a row double it.
void update_loss_scale(LossScale& s, bool finite);

}  // namespace yolo2::runtime
