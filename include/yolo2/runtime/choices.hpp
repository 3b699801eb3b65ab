// The runtime's choices (config: runtime.precision) and its options (the config's `runtime` and
// `distributed` sections are these structs).
#pragma once

#include <cstdint>
#include <string>

namespace yolo2::runtime {

// fp32: float throughout (TF32 off); tf32: float with TF32 tensor cores (CUDA); bf16 / fp16: autocast
// of the network's forward pass (fp16 with dynamic loss scaling), float master weights and loss.
enum class Precision { Fp32, Tf32, Bf16, Fp16 };

struct RuntimeOptions {
  int threads = 0;  // 0: all cores
  uint64_t seed = 0;
  std::string device = "auto";            // auto | cpu | cuda | cuda:N
  bool channels_last = true;              // train with NHWC activations and weights (oneDNN's faster layout on CPU)
  Precision precision = Precision::Fp32;  // training arithmetic (runtime/precision.hpp)
};

// The process group of multi-process training (c10d). Ranks and addresses come from the launch
// (torchrun's environment or `yolo2 train --nproc`: DistOptions), not from here.
struct GroupOptions {
  std::string backend = "auto";  // auto (nccl on CUDA when built with it, else gloo) | gloo | nccl
  double timeout = 300;          // seconds a collective may wait for a peer before the job ends
  bool sync_bn = false;          // batch-norm statistics over the global batch (else per rank)
  double bucket_mb = 25;         // gradient all-reduce bucket size (PyTorch DDP's default)
};

}  // namespace yolo2::runtime
