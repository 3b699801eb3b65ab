#include "yolo2/train/schedule.hpp"

#include <algorithm>
#include <cmath>

#include "yolo2/util/rng.hpp"

namespace yolo2::train {

namespace {
constexpr double kPi = 3.14159265358979323846;
constexpr uint64_t kScaleStream = 0x5343414C45ULL;
}  // namespace

double learning_rate(const TrainConfig& t, int64_t update, int64_t max_batches) {
  if (update < t.burn_in) return t.lr * std::pow(static_cast<double>(update) / t.burn_in, t.burn_in_power);
  switch (t.policy) {
    case LrPolicy::Constant:
      return t.lr;
    case LrPolicy::Steps: {
      double rate = t.lr;
      for (std::size_t i = 0; i < t.steps.size(); ++i) {
        if (t.steps[i] > update) return rate;
        rate *= t.scales[i];
      }
      return rate;
    }
    case LrPolicy::Cosine: {
      const double span = std::max<double>(1.0, static_cast<double>(max_batches - t.burn_in));
      const double x = std::clamp(static_cast<double>(update - t.burn_in) / span, 0.0, 1.0);
      return t.lr * 0.5 * (1.0 + std::cos(kPi * x));
    }
    case LrPolicy::Poly: {  // darknet's get_current_rate, POLY (burn-in handled above)
      const double x =
          std::clamp(static_cast<double>(update) / std::max<double>(1.0, static_cast<double>(max_batches)), 0.0, 1.0);
      return t.lr * std::pow(1.0 - x, t.power);
    }
  }
  return t.lr;
}

double focal_gamma(const FocalConfig& f, double progress) {
  const GammaSchedule& s = f.gamma_schedule;
  switch (s.type) {
    case GammaScheduleType::Constant:
      return f.gamma;
    case GammaScheduleType::Step: {
      std::size_t k = 0;
      while (k < s.milestones.size() && s.milestones[k] <= progress) ++k;
      return s.values[k];
    }
    case GammaScheduleType::Linear:
    case GammaScheduleType::Cosine: {
      if (progress <= s.span_begin) return s.start;
      if (progress >= s.span_end) return s.end;
      const double x = (progress - s.span_begin) / (s.span_end - s.span_begin);
      const double ramp = s.type == GammaScheduleType::Linear ? x : 0.5 * (1.0 - std::cos(kPi * x));
      return s.start + (s.end - s.start) * ramp;
    }
  }
  return f.gamma;
}

int multiscale_size(const DataConfig& d, int64_t iteration, int64_t max_batches, uint64_t seed) {
  if (d.multiscale_sizes.empty()) return d.input_size;
  const int largest = *std::max_element(d.multiscale_sizes.begin(), d.multiscale_sizes.end());
  // darknet: `if (get_current_batch(net) + 200 > net->max_batches) dim = 608;`
  if (d.multiscale_final > 0 && iteration + d.multiscale_final > max_batches) return largest;
  const int64_t group = iteration / d.multiscale_every;
  util::Rng rng(util::mix_seed(util::mix_seed(seed, kScaleStream), static_cast<uint64_t>(group)));
  return d.multiscale_sizes[static_cast<std::size_t>(
      rng.uniform_int(0, static_cast<int64_t>(d.multiscale_sizes.size()) - 1))];
}

}  // namespace yolo2::train
