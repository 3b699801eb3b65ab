#include "yolo2/runtime/setup.hpp"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/utils.h>
#include <torch/version.h>
#include <opencv2/core.hpp>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "yolo2/error.hpp"
#include "yolo2/runtime/build_info.hpp"

namespace yolo2::runtime {

void setup_logging(bool verbose) {
  spdlog::set_pattern("[%H:%M:%S.%e] %^%l%$ %v");
  spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::info);
}

int resolved_threads(const RuntimeOptions& runtime) {
  if (runtime.threads > 0) return runtime.threads;
  return std::max(1u, std::thread::hardware_concurrency());
}

int setup_runtime(const RuntimeOptions& runtime) {
  const int threads = resolved_threads(runtime);
  at::set_num_threads(threads);
  cv::setNumThreads(1);
  torch::manual_seed(runtime.seed);
  spdlog::info("runtime: {} intra-op thread(s) (runtime.threads = {}), seed {}", at::get_num_threads(), runtime.threads,
               runtime.seed);
  spdlog::debug("runtime: {} hardware thread(s), LibTorch inter-op pool {} thread(s), OpenCV {} thread(s)",
                std::thread::hardware_concurrency(), at::get_num_interop_threads(), cv::getNumThreads());
  return threads;
}

int resolved_workers(int workers) {
  if (workers >= 0) return workers;
  int processes = 1;
  if (const char* v = std::getenv("LOCAL_WORLD_SIZE"); v && *v) processes = std::max(1, std::atoi(v));
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / processes);
  return std::max(1, cores - 1);
}

c10::Device resolve_device(const std::string& spec) {
  if (spec == "auto") return torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (spec == "cpu") return c10::Device(c10::kCPU);
  if (spec.rfind("cuda", 0) == 0) {
    if (!runtime::cuda_compiled())
      throw Error("runtime.device is '" + spec + "' but this yolo2 was built against a LibTorch without CUDA (" +
                  std::string(TORCH_VERSION) +
                  ", CPU only): use runtime.device=cpu, or build with a CUDA LibTorch "
                  "(README: Build with CUDA)");
    if (!torch::cuda::is_available())
      throw Error("runtime.device is '" + spec + "' but no GPU is visible (LibTorch " + std::string(TORCH_VERSION) +
                  " has CUDA; no driver, no device, or CUDA_VISIBLE_DEVICES hides them): use runtime.device=cpu");
    const int index = spec.size() > 5 ? std::stoi(spec.substr(5)) : 0;
    if (index >= static_cast<int>(torch::cuda::device_count()))
      throw Error("runtime.device is '" + spec + "' but only " + std::to_string(torch::cuda::device_count()) +
                  " CUDA device(s) exist");
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw Error("runtime.device: unknown device '" + spec + "' (auto, cpu, cuda or cuda:N)");
}

}  // namespace yolo2::runtime
