// Multi-process data-parallel training on PyTorch's own distributed engine: a c10d process group
// (Gloo on CPU; NCCL for CUDA when LibTorch was built with it) found through a TCPStore at
// MASTER_ADDR:MASTER_PORT, gradients averaged by c10d's Reducer (PyTorch DDP's bucketed all-reduce,
// launched from autograd hooks so communication overlaps the rest of the backward pass).
//
// The c10d headers stay in distributed.cpp: this header is cheap to include.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>
#include <string>
#include <vector>

#include "yolo2/runtime/choices.hpp"

namespace yolo2::model {
class YoloV2Impl;
}

namespace yolo2::runtime {

// Where this process sits in the job.
struct DistOptions {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool enabled() const { return world_size > 1; }
};

// torchrun's environment: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. Without RANK and
// WORLD_SIZE: a single process. Throws yolo2::Error naming the variable that is malformed.
DistOptions dist_options_from_env();

// Global batch split for one rank: rank r of w takes images [r * b / w, (r + 1) * b / w) of every
// global (micro-)batch of b images, so the ranks of one step see disjoint parts of the batch a single
// process would see. Throws yolo2::Error when b is not divisible by w.
int local_batch_size(int global_batch, int world_size);

class Distributed {
 public:
  // Joins the group (blocks until every rank has arrived, at most config.timeout seconds).
  Distributed(const DistOptions& options, const GroupOptions& config, const c10::Device& device);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const;
  int world_size() const;
  bool is_main() const { return rank() == 0; }
  const std::string& backend() const;

  // Collectives. `what` names the operation in error messages. Every failure (a peer that exited,
  // a peer that did not answer within distributed.timeout) throws yolo2::Error naming this rank,
  // the operation and the timeout.
  void broadcast(std::vector<at::Tensor> tensors, const std::string& what);       // in place, from rank 0
  void all_reduce_sum(std::vector<at::Tensor> tensors, const std::string& what);  // in place
  // Every rank's [n_r, k] rows (n_r may differ between ranks), concatenated in rank order.
  at::Tensor all_gather_rows(const at::Tensor& rows, const std::string& what);

  // Parameters and buffers of rank 0 to every rank (start, resume).
  void sync_model(model::YoloV2Impl& model);
  // Buffers (batch-norm running statistics) of rank 0 to every rank: before each evaluation and save.
  void sync_buffers(model::YoloV2Impl& model);
  // Gradient averaging over the ranks, in buckets of distributed.bucket_mb, overlapped with the
  // backward pass (c10d::Reducer). Call once, after the model is on its device.
  void attach_reducer(model::YoloV2Impl& model);
  // Before the backward pass of the micro-batch whose gradients are to be averaged (the last of an
  // optimizer step); the others accumulate locally, as DDP's no_sync().
  void prepare_backward(const at::Tensor& loss);
  // Batch norm with statistics over the global batch (distributed.sync_bn).
  void use_sync_batch_norm(model::YoloV2Impl& model);

  // yolo2::Error message for a failed collective or backward pass.
  std::string failure_message(const std::string& what, const std::string& cause) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace yolo2::runtime
