#include "yolo2/runtime/distributed.hpp"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <sstream>

#include "../compat/c10d.hpp"
#include "yolo2/error.hpp"
#include "yolo2/model/yolov2.hpp"

namespace yolo2::runtime {

namespace {

int env_int(const char* name, int fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi)
    throw Error(std::string("environment variable ") + name + "='" + v + "': expected an integer in [" +
                std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int>(x);
}

// The first line of a c10d/Gloo message (they carry C++ backtraces after it).
std::string first_line(const std::string& s) {
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

}  // namespace

DistOptions dist_options_from_env() {
  DistOptions o;
  const bool has_rank = std::getenv("RANK") != nullptr, has_world = std::getenv("WORLD_SIZE") != nullptr;
  if (has_rank != has_world)
    throw Error(std::string("environment: ") + (has_rank ? "RANK" : "WORLD_SIZE") + " is set but " +
                (has_rank ? "WORLD_SIZE" : "RANK") + " is not (torchrun sets both)");
  if (!has_rank) return o;
  o.world_size = env_int("WORLD_SIZE", 1, 1, 1 << 20);
  o.rank = env_int("RANK", 0, 0, o.world_size - 1);
  o.local_rank = env_int("LOCAL_RANK", o.rank, 0, o.world_size - 1);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) o.master_addr = a;
  o.master_port = env_int("MASTER_PORT", o.master_port, 1, 65535);
  return o;
}

int local_batch_size(int global_batch, int world_size) {
  if (world_size < 1 || global_batch % world_size != 0)
    throw Error("a batch of " + std::to_string(global_batch) + " images cannot be split evenly over " +
                std::to_string(world_size) +
                " ranks (train.batch / train.subdivisions must be a multiple of "
                "the number of processes)");
  return global_batch / world_size;
}

// ---------------------------------------------------------------------------------------------

struct Distributed::Impl {
  DistOptions options;
  GroupOptions config;
  c10::Device device{c10::kCPU};
  std::string backend;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> group;
  std::unique_ptr<c10d::Reducer> reducer;

  std::string describe(const std::string& what, const std::string& cause) const {
    std::ostringstream os;
    os << "distributed: rank " << options.rank << " of " << options.world_size << ": " << what
       << " failed: " << first_line(cause) << ". Another rank has exited or did not answer within "
       << "distributed.timeout (" << config.timeout << " s); the job stops. The run folder's last.ckpt "
       << "is the last complete checkpoint (resume with --resume).";
    return os.str();
  }

  at::Tensor to_backend(const at::Tensor& t) const;

  void wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) const {
    try {
      work->wait();
    } catch (const std::exception& e) {
      throw Error(describe(what, e.what()));
    }
  }
};

Distributed::Distributed(const DistOptions& options, const GroupOptions& config, const c10::Device& device)
    : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.options = options;
  d.config = config;
  d.device = device;
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(config.timeout * 1000));
  std::string backend = config.backend;
  if (backend == "auto") backend = device.is_cuda() ? "nccl" : "gloo";
  if (backend == "nccl" && !compat::kHasNccl) {
    if (config.backend == "nccl")
      throw Error("distributed.backend: nccl is not available: this LibTorch (" + std::string(TORCH_VERSION) +
                  ") was built without NCCL (use gloo)");
    backend = "gloo";  // auto on CUDA without NCCL: Gloo also reduces CUDA tensors
  }
  if (backend == "nccl" && !device.is_cuda())
    throw Error("distributed.backend: nccl reduces CUDA tensors only, but the run is on " + device.str() +
                " (runtime.device): use gloo, or runtime.device=cuda");
  d.backend = backend;
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(options.master_port);
    so.isServer = options.rank == 0;
    so.numWorkers = static_cast<std::size_t>(options.world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    d.store = c10::make_intrusive<c10d::TCPStore>(options.master_addr, so);
  } catch (const std::exception& e) {
    throw Error("distributed: rank " + std::to_string(options.rank) + ": cannot reach the rendezvous at " +
                options.master_addr + ":" + std::to_string(options.master_port) +
                " (MASTER_ADDR:MASTER_PORT): " + first_line(e.what()));
  }
  try {
    if (backend == "gloo") {
      auto go = c10d::ProcessGroupGloo::Options::create(timeout);
      // GLOO_SOCKET_IFNAME picks the interface on multi-homed machines (as in PyTorch).
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
        go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (options.master_addr == "127.0.0.1" || options.master_addr == "localhost")
        go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        go->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      go->threads = 2;
      d.group = compat::gloo_group(d.store, options.rank, options.world_size, go);
    } else {
      d.group = compat::nccl_group(d.store, options.rank, options.world_size, timeout);
    }
  } catch (const std::exception& e) {
    throw Error(d.describe("joining the " + backend + " process group", e.what()));
  }
  spdlog::info("distributed: rank {} of {} (local rank {}), backend {}, rendezvous {}:{}, timeout {} s", options.rank,
               options.world_size, options.local_rank, backend, options.master_addr, options.master_port,
               config.timeout);
}

Distributed::~Distributed() = default;

int Distributed::rank() const { return impl_->options.rank; }
int Distributed::world_size() const { return impl_->options.world_size; }
const std::string& Distributed::backend() const { return impl_->backend; }

std::string Distributed::failure_message(const std::string& what, const std::string& cause) const {
  return impl_->describe(what, cause);
}

// NCCL reduces CUDA tensors only; the loop's bookkeeping collectives (loss sums, the stop flag,
// gathered detections) hold CPU tensors. They travel through the run's device and back.
at::Tensor Distributed::Impl::to_backend(const at::Tensor& t) const {
  return backend == "nccl" && !t.is_cuda() ? t.to(device) : t;
}

void Distributed::broadcast(std::vector<at::Tensor> tensors, const std::string& what) {
  for (auto& t : tensors) {
    std::vector<at::Tensor> one{impl_->to_backend(t)};
    impl_->wait(impl_->group->broadcast(one), what);
    if (!one[0].is_same(t)) t.copy_(one[0]);
  }
}

void Distributed::all_reduce_sum(std::vector<at::Tensor> tensors, const std::string& what) {
  if (tensors.empty()) return;
  // One flat buffer: one collective, whatever the number of tensors.
  std::vector<at::Tensor> flat{impl_->to_backend(at::cat([&] {
    std::vector<at::Tensor> parts;
    for (const auto& t : tensors) parts.push_back(t.reshape(-1));
    return parts;
  }()))};
  impl_->wait(impl_->group->allreduce(flat), what);
  int64_t offset = 0;
  for (auto& t : tensors) {
    t.copy_(flat[0].narrow(0, offset, t.numel()).view_as(t));
    offset += t.numel();
  }
}

at::Tensor Distributed::all_gather_rows(const at::Tensor& rows, const std::string& what) {
  const int w = world_size();
  const int64_t k = rows.size(1);
  // Row counts first (Gloo's all-gather needs equal sizes), then the padded rows.
  at::Tensor n = at::zeros({w}, at::kLong);
  n[rank()] = rows.size(0);
  all_reduce_sum({n}, what + " (sizes)");
  const int64_t most = n.max().item<int64_t>();
  at::Tensor mine = at::zeros({std::max<int64_t>(most, 1), k}, rows.options());
  if (rows.size(0) > 0) mine.narrow(0, 0, rows.size(0)).copy_(rows);
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < w; ++r) out[0].push_back(at::empty_like(mine));
  mine = impl_->to_backend(mine);
  for (auto& o : out[0]) o = impl_->to_backend(o);
  std::vector<at::Tensor> in{mine};
  impl_->wait(impl_->group->allgather(out, in), what);
  std::vector<at::Tensor> parts;
  for (int r = 0; r < w; ++r) parts.push_back(out[0][static_cast<std::size_t>(r)].narrow(0, 0, n[r].item<int64_t>()));
  return at::cat(parts).to(rows.device());
}

void Distributed::sync_model(model::YoloV2Impl& model) {
  std::vector<at::Tensor> tensors;
  at::NoGradGuard no_grad;
  for (const auto& p : model.parameters()) tensors.push_back(p.data());
  for (const auto& b : model.buffers()) tensors.push_back(b);
  broadcast(tensors, "broadcasting the model from rank 0");
}

void Distributed::attach_reducer(model::YoloV2Impl& model) {
  std::vector<at::Tensor> params;
  for (const auto& p : model.parameters())
    if (p.requires_grad()) params.push_back(p);
  const auto cap = static_cast<std::size_t>(impl_->config.bucket_mb * 1024 * 1024);
  // As PyTorch DDP: buckets in reverse parameter order (the order gradients become ready), the
  // first one small so that communication starts early.
  auto [buckets, limits] =
      c10d::compute_bucket_assignment_by_size(params, {std::min<std::size_t>(c10d::kDefaultFirstBucketBytes, cap), cap},
                                              std::vector<bool>(params.size(), false));
  std::reverse(buckets.begin(), buckets.end());
  std::reverse(limits.begin(), limits.end());
  try {
    impl_->reducer =
        compat::make_reducer(params, std::move(buckets), std::move(limits), impl_->group, static_cast<int64_t>(cap),
                             static_cast<int64_t>(c10d::kDefaultFirstBucketBytes));
  } catch (const std::exception& e) {
    throw Error(impl_->describe("setting up gradient buckets", e.what()));
  }
}

void Distributed::prepare_backward(const at::Tensor& loss) {
  if (!impl_->reducer) throw Error("distributed: prepare_backward before attach_reducer (internal error)");
  // As DDP's forward: after the first backward the reducer knows the order in which gradients became
  // ready and rebuilds its buckets to match, once (a collective: rank 0's assignment to every rank).
  // Never calling it also kept the reducer recording that order, growing host memory every step.
  try {
    impl_->reducer->rebuild_buckets();
  } catch (const std::exception& e) {
    throw Error(impl_->describe("rebuilding the gradient buckets", e.what()));
  }
  impl_->reducer->prepare_for_backward({loss});
}

void Distributed::sync_buffers(model::YoloV2Impl& model) {
  // Without synchronized batch norm each rank's running statistics follow its own shard; evaluation
  // (every rank runs a shard of the test set) and the checkpoint must use one set: rank 0's, as DDP's
  // broadcast_buffers.
  std::vector<at::Tensor> buffers;
  at::NoGradGuard no_grad;
  for (const auto& b : model.buffers()) buffers.push_back(b);
  broadcast(buffers, "broadcasting batch-norm statistics from rank 0");
}

// ---------------------------------------------------------------------------------------------
// Synchronized batch norm: the batch statistics and, in the backward pass, the two reductions
// over the batch are summed over the ranks. Per-rank losses are scaled so that averaging the
// parameter gradients gives the single-process gradient (see the trainer); dgamma and dbeta are
// therefore the local sums, averaged by the reducer like every other gradient.

namespace {

struct SyncBatchNormFunction : public torch::autograd::Function<SyncBatchNormFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, at::Tensor running_mean, at::Tensor running_var, double momentum,
                            double eps, Distributed* dist) {
    const int64_t c = x.size(1);
    // The global count from the host: every rank holds the same share of the global batch at the same
    // input size (the loader splits a batch evenly), so no count travels and no .item() waits.
    const double n = static_cast<double>(x.numel() / c) * dist->world_size();
    // Sums in double: E[x^2] - E[x]^2 loses precision in float.
    at::Tensor stats = at::cat({x.sum({0, 2, 3}, false, at::kDouble), x.square().sum({0, 2, 3}, false, at::kDouble)});
    dist->all_reduce_sum({stats}, "synchronized batch norm (forward)");
    const at::Tensor mean = stats.narrow(0, 0, c) / n;
    const at::Tensor var = (stats.narrow(0, c, c) / n - mean.square()).clamp_min(0);
    {
      at::NoGradGuard no_grad;
      running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype()), momentum);
      running_var.mul_(1 - momentum).add_((var * (n / std::max(n - 1, 1.0))).to(running_var.dtype()), momentum);
    }
    const at::Tensor invstd = (var + eps).rsqrt().to(x.scalar_type());
    const at::Tensor xhat = (x - mean.to(x.scalar_type()).view({1, c, 1, 1})) * invstd.view({1, c, 1, 1});
    ctx->save_for_backward({xhat, weight, invstd});
    ctx->saved_data["n"] = n;
    ctx->saved_data["dist"] = reinterpret_cast<int64_t>(dist);
    return xhat * weight.view({1, c, 1, 1}) + bias.view({1, c, 1, 1});
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& xhat = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& invstd = saved[2];
    const double n = ctx->saved_data["n"].toDouble();
    auto* dist = reinterpret_cast<Distributed*>(ctx->saved_data["dist"].toInt());
    const at::Tensor dy = grads[0].contiguous();
    const int64_t c = dy.size(1);
    const at::Tensor sum_dy = dy.sum({0, 2, 3});
    const at::Tensor sum_dy_xhat = (dy * xhat).sum({0, 2, 3});
    at::Tensor global = at::cat({sum_dy, sum_dy_xhat});
    dist->all_reduce_sum({global}, "synchronized batch norm (backward)");
    const at::Tensor mean_dy = (global.narrow(0, 0, c) / n).view({1, c, 1, 1});
    const at::Tensor mean_dy_xhat = (global.narrow(0, c, c) / n).view({1, c, 1, 1});
    const at::Tensor dx = (weight * invstd).view({1, c, 1, 1}) * (dy - mean_dy - xhat * mean_dy_xhat);
    return {dx, sum_dy_xhat, sum_dy, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

void Distributed::use_sync_batch_norm(model::YoloV2Impl& model) {
  model.set_norm_override([this](const at::Tensor& x, torch::nn::BatchNorm2dImpl& bn) {
    const double momentum = bn.options.momentum().value_or(0.1);
    {
      at::NoGradGuard no_grad;
      bn.num_batches_tracked.add_(1);
    }
    return SyncBatchNormFunction::apply(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, momentum,
                                        bn.options.eps(), this);
  });
}

}  // namespace yolo2::runtime
