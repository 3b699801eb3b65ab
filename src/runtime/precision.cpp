#include "yolo2/runtime/precision.hpp"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <string>

#include "../config_words.hpp"
#include "yolo2/error.hpp"
#include "yolo2/runtime/build_info.hpp"

namespace yolo2::runtime {

namespace {

// The processor's bf16 instructions (oneDNN uses them when present, and emulates bf16 otherwise).
bool cpu_has_bf16() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0)
      return line.find(" avx512_bf16") != std::string::npos || line.find(" amx_bf16") != std::string::npos;
  return false;
}

void check_cuda_bf16(const c10::Device& device) {
  for (const auto& g : runtime::build_info().gpus) {
    if (g.index != device.index()) continue;
    if (g.capability_major < 8)
      throw Error("runtime.precision is bf16 but GPU " + std::to_string(g.index) + " (" + g.name +
                  ", compute capability " + std::to_string(g.capability_major) + "." +
                  std::to_string(g.capability_minor) + ") has no bf16 tensor cores (8.0 or later): use fp16 or tf32");
  }
}

}  // namespace

PrecisionPlan setup_precision(Precision precision, const c10::Device& device) {
  PrecisionPlan plan;
  plan.precision = precision;
  const bool cuda = device.is_cuda();
  if (!cuda && (precision == Precision::Tf32 || precision == Precision::Fp16))
    throw Error(std::string("runtime.precision is ") + config_word(precision) + " but runtime.device is " +
                device.str() +
                (precision == Precision::Tf32 ? ": TF32 is a mode of NVIDIA tensor cores"
                                              : ": fp16 autocast with loss scaling is for CUDA devices") +
                " (on the CPU: fp32, or bf16)");
  if (precision == Precision::Bf16) {
    if (cuda) check_cuda_bf16(device);
    if (!cuda && !cpu_has_bf16())
      spdlog::warn(
          "runtime.precision bf16: this processor has no bf16 instructions (avx512_bf16, amx_bf16); oneDNN emulates "
          "them, which is usually slower than fp32");
    plan.autocast = true;
    plan.dtype = at::kBFloat16;
  }
  if (precision == Precision::Fp16) {
    plan.autocast = true;
    plan.dtype = at::kHalf;
    plan.loss_scaling = true;
  }
  at::globalContext().setAllowTF32CuBLAS(precision == Precision::Tf32);
  at::globalContext().setAllowTF32CuDNN(precision == Precision::Tf32);
  // cudnn.benchmark: cuDNN times its algorithms once per convolution shape and keeps the fastest. A
  // multi-scale run has 10 input sizes, so at most 10 x (its convolutions) x 3 (forward, data and
  // weight gradients) searches, all in the first iterations at each size; the choices are a small
  // table, and the workspaces come from LibTorch's caching allocator and go back to it after each
  // call, so memory stays at the largest workspace (LibTorch 2.x also tries only a limited number of
  // algorithms per search).
  at::globalContext().setBenchmarkCuDNN(cuda);
  if (precision != Precision::Fp32)
    spdlog::info("precision: {} ({}{})", config_word(precision),
                 plan.autocast ? std::string("autocast to ") + c10::toString(plan.dtype) + " on " + device.str()
                               : std::string("TF32 in cuBLAS and cuDNN"),
                 plan.loss_scaling ? ", dynamic loss scaling" : "");
  return plan;
}

bool unscale_gradients(const std::vector<at::Tensor>& params, double scale) {
  std::vector<at::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return true;
  if (grads.front().is_cuda()) {
    // GradScaler's _unscale_grads_: one fused multi-tensor kernel multiplies every gradient by 1 / scale
    // (exact: the scale is a power of two) and raises found_inf where one is not finite. The weights,
    // hence their gradients, are all fp32 on one GPU.
    at::Tensor found_inf = at::zeros({1}, grads.front().options().dtype(at::kFloat));
    const at::Tensor inv_scale = at::full({1}, 1.0 / scale, found_inf.options());
    at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, inv_scale);
    return found_inf.item<float>() == 0.0f;
  }
  // Elsewhere (LibTorch 1.13 has no CPU kernel of the fused op; fp16 runs on CUDA anyway, and the
  // CPU tests check the rule): gradient by gradient, the same arithmetic.
  at::Tensor bad;
  for (auto& g : grads) {
    g.mul_(1.0 / scale);
    at::Tensor b = g.isfinite().logical_not().any();
    bad = bad.defined() ? bad.logical_or(b) : b;
  }
  return !bad.item<bool>();
}

void update_loss_scale(LossScale& s, bool finite) {
  if (!finite) {
    s.scale *= LossScale::kBackoff;
    s.good_steps = 0;
    s.skipped += 1;
    return;
  }
  if (++s.good_steps == LossScale::kGrowthInterval) {
    s.scale *= LossScale::kGrowth;
    s.good_steps = 0;
  }
}

}  // namespace yolo2::runtime
