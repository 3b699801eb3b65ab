// What this yolo2 binary was built with and what it sees: `yolo2 version`, `yolo2 bench --json` and
// the comment at the top of a run folder's config.yaml all print these facts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace yolo2::runtime {

struct GpuInfo {
  int index = 0;
  std::string name;
  int64_t memory_mib = 0;
  int capability_major = 0, capability_minor = 0;
};

struct BuildInfo {
  std::string yolo2_version;
  std::string libtorch_version;  // e.g. "1.13.1", "2.11.0"
  std::string compiler;          // e.g. "GCC 12.2.0"
  std::string opencv_version;
  std::string onednn_libtorch;  // the oneDNN inside LibTorch (its build configuration), "" if unknown
  std::string onednn_plan;      // the oneDNN library yolo2's CPU inference plan links, "none" without
  bool cuda_compiled = false;   // LibTorch built with CUDA (and yolo2 linked against it)
  std::string cuda_runtime;     // CUDA runtime LibTorch was built with, e.g. "13.0"; "" without CUDA
  std::string cudnn;            // e.g. "9.19.0"; "" without
  std::string nccl;             // e.g. "2.28.9"; "" when LibTorch has no NCCL process group
  std::string cuda_driver;      // the installed driver's CUDA version, "" when no driver is installed
  std::vector<GpuInfo> gpus;    // visible GPUs (CUDA_VISIBLE_DEVICES applies)
};

// Whether LibTorch was built with CUDA (and yolo2 linked against its CUDA libraries). Cheap.
bool cuda_compiled();

// Gathers the facts; never throws (a fact that cannot be read is left empty).
BuildInfo build_info();

// "key: value" lines, one per fact, GPUs one per line; `prefix` starts every line (e.g. "# ").
std::string to_text(const BuildInfo& info, const std::string& prefix = "");

// The same facts as a JSON object (stable keys: see build_info.cpp).
std::string to_json(const BuildInfo& info, int indent = 2);

}  // namespace yolo2::runtime
