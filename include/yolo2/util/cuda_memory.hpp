// The current GPU, and GPU memory as LibTorch's CUDA caching allocator counts it (the figure
// torch.cuda.max_memory_allocated gives), for the benchmarks. Without CUDA (a CPU-only LibTorch) nothing is measured.
#pragma once

namespace yolo2::util {

// Starts a new peak on GPU `device` (a no-op without CUDA).
void reset_cuda_peak_memory(int device);
// MiB allocated at most on GPU `device` since the last reset; -1 without CUDA.
double cuda_peak_memory_mib(int device);
// Makes GPU `device` this process's current device (a rank's own GPU, before its NCCL group and first
// allocations); a no-op without CUDA.
void set_cuda_device(int device);

}  // namespace yolo2::util
