// Process-wide runtime set-up from the `runtime` config section: threads, seeds, device. The runtime
// room (this, precision, distributed, launch, build facts) sits on model/ (ranks sync the network;
// the build facts name the oneDNN plan's library) and below io/ and train/.
#pragma once

#include <c10/core/Device.h>

#include <string>

#include "yolo2/runtime/choices.hpp"

namespace yolo2::runtime {

// Console logging through spdlog ("info" by default; "debug" with --verbose).
void setup_logging(bool verbose);

// Sets LibTorch's intra-op threads (runtime.threads, 0 = all cores) and keeps OpenCV's own pool
// to one thread so the two never oversubscribe the cores; seeds LibTorch's generator. Logs what
// it set. Returns the thread count.
int setup_runtime(const RuntimeOptions& runtime);

// Resolves `runtime.threads` (0: all cores).
int resolved_threads(const RuntimeOptions& runtime);

// data.workers resolved: -1 -> one loader worker per core of this process's share of the machine
// (hardware threads / LOCAL_WORLD_SIZE, which --nproc and torchrun set), less one for the training
// thread, at least 1; 0 and above as given.
int resolved_workers(int workers);

// "auto" -> CUDA when LibTorch has it, else CPU; "cpu"; "cuda"; "cuda:N". Throws yolo2::Error
// when CUDA is asked for but not available.
c10::Device resolve_device(const std::string& spec);

}  // namespace yolo2::runtime
