#include "yolo2/runtime/build_info.hpp"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <nlohmann/json.hpp>
#include <opencv2/core/version.hpp>

#include <regex>
#include <sstream>

#include "yolo2/model/onednn_plan.hpp"

// YOLO2_TORCH_CUDA=1 (set by CMake on this file and cuda_memory.cpp only): LibTorch has CUDA, the CUDA runtime's
// headers and NCCL's are on the include path.
#ifndef YOLO2_TORCH_CUDA
#define YOLO2_TORCH_CUDA 0
#endif
#if YOLO2_TORCH_CUDA
#include <cuda_runtime_api.h>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/NCCLUtils.hpp>
#endif
#endif

namespace yolo2::runtime {

namespace {

#if YOLO2_TORCH_CUDA
// CUDA's encoding: 1000 * major + 10 * minor.
std::string cuda_version_text(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }

// cuDNN 9: 10000 * major + 100 * minor + patch; cuDNN 8: 1000 * major + 100 * minor + patch.
std::string cudnn_version_text(long v) {
  const long major_div = v >= 90000 ? 10000 : 1000;
  return std::to_string(v / major_div) + "." + std::to_string((v % major_div) / 100) + "." + std::to_string(v % 100);
}
#endif

std::string compiler_text() {
#if defined(__clang__)
  return "Clang " __clang_version__;
#elif defined(__GNUC__)
  return "GCC " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." +
         std::to_string(__GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

}  // namespace

bool cuda_compiled() { return YOLO2_TORCH_CUDA != 0; }

BuildInfo build_info() {
  BuildInfo info;
  info.yolo2_version = YOLO2_VERSION;
  info.libtorch_version = TORCH_VERSION;
  info.compiler = compiler_text();
  info.opencv_version = CV_VERSION;
  try {
    // LibTorch reports its oneDNN as "Intel(R) MKL-DNN v2.6.3" (1.13) or "oneDNN v3.10.2" (2.x).
    std::smatch m;
    const std::string config = at::show_config();
    if (std::regex_search(config, m, std::regex(R"((?:oneDNN|MKL-DNN) v([0-9][0-9.]*))"))) info.onednn_libtorch = m[1];
  } catch (...) {}
  info.onednn_plan = model::onednn_available() ? model::onednn_plan_version() : "none";
#if YOLO2_TORCH_CUDA
  info.cuda_compiled = true;
  try {
    info.cuda_runtime = cuda_version_text(static_cast<int>(at::detail::getCUDAHooks().versionCUDART()));
    info.cudnn = cudnn_version_text(at::detail::getCUDAHooks().versionCuDNN());
  } catch (...) {}
#ifdef USE_C10D_NCCL
  try {
    info.nccl = c10d::getNcclVersion();
  } catch (...) {}
#endif
  int driver = 0;
  if (cudaDriverGetVersion(&driver) == cudaSuccess && driver > 0) info.cuda_driver = cuda_version_text(driver);
  try {
    const int n = static_cast<int>(torch::cuda::device_count());
    for (int i = 0; i < n; ++i) {
      cudaDeviceProp p{};
      if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
      info.gpus.push_back({i, p.name, static_cast<int64_t>(p.totalGlobalMem >> 20), p.major, p.minor});
    }
  } catch (...) {}
#endif
  return info;
}

std::string to_text(const BuildInfo& info, const std::string& prefix) {
  std::ostringstream os;
  const auto line = [&](const std::string& key, const std::string& value) {
    os << prefix << key << ": " << (value.empty() ? "-" : value) << "\n";
  };
  line("yolo2", info.yolo2_version);
  line("LibTorch", info.libtorch_version + (info.cuda_compiled ? " (CUDA)" : " (CPU only)"));
  line("oneDNN in LibTorch", info.onednn_libtorch);
  line("oneDNN of the inference plan", info.onednn_plan);
  line("CUDA compiled in", info.cuda_compiled ? "yes" : "no");
  if (info.cuda_compiled) {
    line("CUDA runtime", info.cuda_runtime);
    line("cuDNN", info.cudnn);
    line("NCCL", info.nccl.empty() ? "no" : info.nccl);
    line("CUDA driver", info.cuda_driver.empty() ? "none installed" : info.cuda_driver);
    line("GPUs", std::to_string(info.gpus.size()));
    for (const auto& g : info.gpus)
      line("GPU " + std::to_string(g.index), g.name + ", " + std::to_string(g.memory_mib) +
                                                 " MiB, compute capability " + std::to_string(g.capability_major) +
                                                 "." + std::to_string(g.capability_minor));
  }
  line("OpenCV", info.opencv_version);
  line("compiler", info.compiler);
  return os.str();
}

std::string to_json(const BuildInfo& info, int indent) {
  nlohmann::ordered_json j;
  j["yolo2"] = info.yolo2_version;
  j["libtorch"] = info.libtorch_version;
  j["onednn_libtorch"] = info.onednn_libtorch;
  j["onednn_plan"] = info.onednn_plan;
  j["cuda_compiled"] = info.cuda_compiled;
  j["cuda_runtime"] = info.cuda_runtime;
  j["cudnn"] = info.cudnn;
  j["nccl"] = info.nccl;
  j["cuda_driver"] = info.cuda_driver;
  j["gpus"] = nlohmann::ordered_json::array();
  for (const auto& g : info.gpus)
    j["gpus"].push_back(
        {{"index", g.index},
         {"name", g.name},
         {"memory_mib", g.memory_mib},
         {"compute_capability", std::to_string(g.capability_major) + "." + std::to_string(g.capability_minor)}});
  j["opencv"] = info.opencv_version;
  j["compiler"] = info.compiler;
  return j.dump(indent);
}

}  // namespace yolo2::runtime
