// Debian's libtorch-dev 1.13 ships torch/csrc/distributed/c10d/reducer.hpp (c10d::Reducer, the
// engine of PyTorch's DistributedDataParallel, exported by libtorch_cpu.so) but not the
// distributed-autograd header it includes. reducer.hpp needs only two names from it, both for RPC
// (distributed autograd), which yolo2 does not use; they are declared here with the layout the
// library was built with: ContextPtr is a std::shared_ptr (two pointers whatever the pointee), and
// GradCallback is the std::function type that reducer.hpp static_asserts.
// Used only when the real header is missing (CMake adds this folder to the include path last).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>

namespace torch::distributed::autograd {

class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor&)>;
};

using ContextPtr = std::shared_ptr<DistAutogradContext>;

}  // namespace torch::distributed::autograd
