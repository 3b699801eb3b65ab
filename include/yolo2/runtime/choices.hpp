// The runtime's choices (config: runtime.precision).
#pragma once

namespace yolo2::runtime {

// fp32: float throughout (TF32 off); tf32: float with TF32 tensor cores (CUDA); bf16 / fp16: autocast
// of the network's forward pass (fp16 with dynamic loss scaling), float master weights and loss.
enum class Precision { Fp32, Tf32, Bf16, Fp16 };

}  // namespace yolo2::runtime
