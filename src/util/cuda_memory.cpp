#include "yolo2/util/cuda_memory.hpp"

// YOLO2_TORCH_CUDA=1 (set by CMake on this file and build_info.cpp only): LibTorch has CUDA.
#ifndef YOLO2_TORCH_CUDA
#define YOLO2_TORCH_CUDA 0
#endif
#if YOLO2_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace yolo2::util {

#if YOLO2_TORCH_CUDA
void reset_cuda_peak_memory(int device) {
  c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
}

double cuda_peak_memory_mib(int device) {
  // The stats' type moved between LibTorch versions (1.x: CUDACachingAllocator::DeviceStats; 2.x:
  // CachingDeviceAllocator::DeviceStats); index 0 of allocated_bytes is the aggregate in both.
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
  return static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0);
}

void set_cuda_device(int device) { c10::cuda::set_device(static_cast<c10::DeviceIndex>(device)); }
#else
void reset_cuda_peak_memory(int) {}
double cuda_peak_memory_mib(int) { return -1; }
void set_cuda_device(int) {}
#endif

}  // namespace yolo2::util
