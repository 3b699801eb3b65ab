// The measurements behind `yolo2 bench` (bench.cpp puts them together).
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

#include <c10/core/Device.h>

#include "yolo2/config.hpp"
#include "yolo2/runtime/precision.hpp"

namespace yolo2::bench {

using Clock = std::chrono::steady_clock;

// Where the measurements run: the device (runtime.device) and what runtime.precision means there.
// On a GPU every timed call ends with a synchronisation, so that it measures the work, not its launch.
struct Target {
  c10::Device device{c10::kCPU};
  runtime::PrecisionPlan plan;
  bool cuda() const { return device.is_cuda(); }
  void sync() const;  // waits for the device's queued work (nothing on the CPU)
};

// Median seconds of `repeats` calls of fn after `warmup` calls.
template <class Fn>
double median_seconds(int warmup, int repeats, Fn fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// This machine's reference: GFLOP/s of one large 3x3 convolution (256 -> 256 channels, 52 x 52,
// batch 8: 25.5 GFLOP forward; yolov2's 3x3 layers look like it), forward and backward (input and
// weight gradients: twice the forward FLOPs).
struct ConvReference {
  double forward = 0, backward = 0, both = 0;  // GFLOP/s
};
ConvReference reference_conv(int repeats, bool channels_last, const Target& target);

// One training step, the trainer's own (Trainer::run_step on the detector's task, through the task
// interface: the stream's batch to the device, forward in training mode under the precision's
// autocast, region loss in fp32, backward, scaled for fp16, the configured optimizer's step with
// fp16's unscaling) at the configured mini-batch (one micro-batch per step), in the given memory
// format, on a stream that repeats one batch of random pixels and boxes, past burn-in and the
// warm-up term, after one warm-up step: images/s (CPU: the median step; GPU: `repeats` steps back to
// back, one wait at the end), the median of each phase (forward; loss; backward, with the host's
// read of the loss terms on the CPU; optimizer step; on a GPU from other steps, synchronised after
// each phase), and the peak GPU memory LibTorch's allocator held after the warm-up (-1 on the CPU).
struct TrainStep {
  double images_per_s = 0;
  double forward_ms = 0, loss_ms = 0, backward_ms = 0, step_ms = 0;
  double peak_gpu_mib = -1;
};
TrainStep train_step(const Config& config, int repeats, bool channels_last, const Target& target);

// Images/s of the training loader (full augmentation) at the configured input size and workers;
// `cached`: with data.cache ram, measured after one pass has filled the cache.
double loader_rate(const Config& config, int batches, bool cached = false);

// The loader's host work per image, stage by stage, on one thread (ms per image, the median of 3
// passes over up to 64 training images at the configured input size with full augmentation): reading
// the file, decoding it, the geometric warp, darknet's colour distortion (the CPU path's; a GPU run
// does it on the device), packing to float NCHW (CPU path) or to bytes NHWC (GPU path).
struct LoaderStages {
  double read = 0, decode = 0, warp = 0, colour = 0, pack_float = 0, pack_bytes = 0;
  int images = 0;
};
LoaderStages loader_stages(const Config& config);

// Median seconds of VOC scoring of 5,000 images and 100,000 detections (synthetic).
double voc_scoring_seconds(const Config& config, int repeats);

// Peak resident memory since the last reset (VmHWM), MiB.
void reset_peak_rss();
double peak_rss_mib();

}  // namespace yolo2::bench
