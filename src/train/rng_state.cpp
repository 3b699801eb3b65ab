#include "yolo2/train/rng_state.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstring>
#include <mutex>

namespace yolo2::train {

std::string rng_state_bytes() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  const at::Tensor s = gen.get_state();
  return std::string(reinterpret_cast<const char*>(s.data_ptr<uint8_t>()), static_cast<std::size_t>(s.numel()));
}

void restore_rng_state(const std::string& bytes) {
  if (bytes.empty()) return;
  at::Tensor s = at::empty({static_cast<int64_t>(bytes.size())}, at::kByte);
  std::memcpy(s.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(s);
}

}  // namespace yolo2::train
