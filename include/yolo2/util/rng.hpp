// A small, portable random generator (splitmix64). Every random choice in yolo2 takes one of these,
// seeded from the config seed and the position of the choice (image, batch, epoch), so results do
// not depend on thread count or scheduling and are the same on every platform (unlike
// std::uniform_*_distribution, whose output the standard leaves to the library).
#pragma once

#include <cstdint>

namespace yolo2::util {

// Mixes a seed with a stream identifier into a new, well-spread seed.
constexpr uint64_t mix_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : state_(seed) {}

  uint64_t next_u64() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [lo, hi] (inclusive); lo <= hi.
  int64_t uniform_int(int64_t lo, int64_t hi) {
    const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
    return lo + static_cast<int64_t>(span == 0 ? next_u64() : next_u64() % span);
  }
  bool bernoulli(double p) { return uniform() < p; }
  uint64_t state() const { return state_; }

 private:
  uint64_t state_;
};

}  // namespace yolo2::util
