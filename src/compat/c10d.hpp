// c10d across the LibTorch lines yolo2 builds against: the one place that knows how they differ.
//
// - Process groups: in 1.13, ProcessGroupGloo / ProcessGroupNCCL are c10d::ProcessGroups. From 2.0
//   they are c10d::Backends that a c10d::ProcessGroup dispatches to per device type (what
//   torch.distributed's _new_process_group_helper builds); the collectives and the Reducer take the
//   ProcessGroup.
// - The Reducer's constructor changes between releases (1.13-2.x: 10 arguments with per-bucket size
//   limits; 2.11: 12, without them). The forms are told apart by what the constructor accepts, not
//   by version numbers, so a release in between that has one of them builds too.
//
// Included by src/runtime/distributed.cpp only (the c10d headers are heavy).
#pragma once

#include <cstdlib>

#include <torch/version.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace yolo2::compat {

namespace detail {

#if TORCH_VERSION_MAJOR >= 2
// A ProcessGroup that dispatches the given device types to `backend`. (A template so that only the
// branch this release has is compiled: `if constexpr` discards only dependent code.)
template <class B, class PG = c10d::ProcessGroup>
c10::intrusive_ptr<PG> wrap(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                            c10::intrusive_ptr<B> backend, typename PG::BackendType type,
                            const std::vector<c10::DeviceType>& devices) {
  c10::intrusive_ptr<PG> group;
  if constexpr (std::is_constructible_v<PG, const c10::intrusive_ptr<c10d::Store>&, int, int>) {
    group = c10::make_intrusive<PG>(store, rank, size);
  } else {  // 2.0-2.5: the group also takes options naming its backend
    group = c10::make_intrusive<PG>(
        store, rank, size,
        c10::make_intrusive<typename PG::Options>(backend->getBackendName(), backend->getBackendOptions()->timeout));
  }
  group->setDefaultBackend(type);
  for (const auto device : devices) group->setBackend(device, type, backend);
  return group;
}
#endif

}  // namespace detail

// Gloo over `store`. Gloo also reduces CUDA tensors (through host copies), so the group serves both
// device types.
inline c10::intrusive_ptr<c10d::ProcessGroup> gloo_group(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                                         int size,
                                                         c10::intrusive_ptr<c10d::ProcessGroupGloo::Options> options) {
#if TORCH_VERSION_MAJOR >= 2
  auto backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, std::move(options));
  return detail::wrap(store, rank, size, backend, c10d::ProcessGroup::BackendType::GLOO,
                      {c10::DeviceType::CPU, c10::DeviceType::CUDA});
#else
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, std::move(options));
#endif
}

#ifdef USE_C10D_NCCL
inline constexpr bool kHasNccl = true;
// NCCL over `store`, for CUDA tensors. A collective that a dead or hung peer never completes must
// end in Work::wait throwing after `timeout` (which Distributed turns into its "rank R ... failed"
// message), not in NCCL's watchdog aborting the process: blocking wait, under the variable's name
// in each LibTorch line (2.2 and later read TORCH_NCCL_BLOCKING_WAIT, 1.13 NCCL_BLOCKING_WAIT);
// a value the user set is kept.
inline c10::intrusive_ptr<c10d::ProcessGroup> nccl_group(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                                         int size, std::chrono::milliseconds timeout) {
  ::setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
  ::setenv("NCCL_BLOCKING_WAIT", "1", 0);
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
#if TORCH_VERSION_MAJOR >= 2
  auto backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
  return detail::wrap(store, rank, size, backend, c10d::ProcessGroup::BackendType::NCCL, {c10::DeviceType::CUDA});
#else
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
#endif
}
#else
inline constexpr bool kHasNccl = false;
inline c10::intrusive_ptr<c10d::ProcessGroup> nccl_group(const c10::intrusive_ptr<c10d::Store>&, int, int,
                                                         std::chrono::milliseconds) {
  throw std::runtime_error("this LibTorch was built without NCCL");
}
#endif

// PyTorch DDP's Reducer over `params` with the given buckets (already in the order gradients become
// ready) and their byte limits, no unused parameters, gradients copied into the buckets. (A template
// so that only the constructor form this release has is compiled.)
template <class R = c10d::Reducer>
std::unique_ptr<R> make_reducer(std::vector<at::Tensor> params, std::vector<std::vector<std::size_t>> buckets,
                                std::vector<std::size_t> limits, c10::intrusive_ptr<c10d::ProcessGroup> group,
                                int64_t bucket_cap, int64_t first_bucket_cap) {
  using Names = std::unordered_map<std::size_t, std::string>;
  using Params = std::vector<at::Tensor>;
  using Buckets = std::vector<std::vector<std::size_t>>;
  using Limits = std::vector<std::size_t>;
  using Group = c10::intrusive_ptr<c10d::ProcessGroup>;
  using Sparse = std::vector<bool>;
  Sparse sparse(params.size(), false);
  const bool find_unused = false, bucket_view = false;
  if constexpr (std::is_constructible_v<R, Params, Buckets, Group, Sparse, int64_t, bool, bool, Names, int64_t, bool,
                                        bool, std::vector<int64_t>>) {
    // 2.11: no per-bucket limits; skip_all_reduce_unused_params, use_python_reducer and a per-bucket
    // cap list (empty: bucket_cap and first_bucket_cap, as before) added.
    (void)limits;
    return std::make_unique<R>(std::move(params), std::move(buckets), std::move(group), std::move(sparse), bucket_cap,
                               find_unused, bucket_view, Names{}, first_bucket_cap,
                               /*skip_all_reduce_unused_params=*/false, /*use_python_reducer=*/false,
                               std::vector<int64_t>{});
  } else if constexpr (std::is_constructible_v<R, Params, Buckets, Limits, Group, Sparse, int64_t, bool, bool, Names,
                                               int64_t, bool, bool>) {
    // Releases with per-bucket limits and the two flags.
    return std::make_unique<R>(std::move(params), std::move(buckets), std::move(limits), std::move(group),
                               std::move(sparse), bucket_cap, find_unused, bucket_view, Names{}, first_bucket_cap,
                               /*skip_all_reduce_unused_params=*/false, /*use_python_reducer=*/false);
  } else if constexpr (std::is_constructible_v<R, Params, Buckets, Limits, Group, Sparse, int64_t, bool, bool, Names,
                                               int64_t>) {
    // 1.13 and the 2.x releases before the flags.
    return std::make_unique<R>(std::move(params), std::move(buckets), std::move(limits), std::move(group),
                               std::move(sparse), bucket_cap, find_unused, bucket_view, Names{}, first_bucket_cap);
  } else {
    static_assert(sizeof(R) == 0,
                  "c10d::Reducer: a constructor form this LibTorch release has that src/compat/c10d.hpp does not know");
  }
}

}  // namespace yolo2::compat
