// The threaded batch loader. Batch k is a pure function of (dataset, options, seed, k): which images
// it holds, their input size and every augmentation draw are derived from k, so the stream is the
// same for any number of workers and a resumed run can start at any batch.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/MemoryFormat.h>
#include <opencv2/core.hpp>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "yolo2/data/augment.hpp"
#include "yolo2/data/choices.hpp"
#include "yolo2/data/dataset.hpp"

namespace yolo2::data {

struct Batch {
  int64_t index = 0;  // position in the stream
  int64_t epoch = 0;
  int size = 0;  // input side in pixels
  // [B, 3, size, size] float32 RGB in [0, 1]; with LoaderOptions::device_side, [B, size, size, 3] uint8
  // RGB, which network_input() turns into the former on the batch's device. Either way, pass the
  // batch through network_input().
  at::Tensor images;
  at::Tensor colour;  // device_side training batches: [B, 3] double dhue, dsat, dexp (undefined: none)
  HsvMode colour_mode = HsvMode::Darknet;  // whose arithmetic network_input applies `colour` with
  at::Tensor boxes;                        // [B, M, 4] float32 x1, y1, x2, y2 normalised to [0, 1]; zero padding
  at::Tensor labels;                       // [B, M] int64; -1 padding (classification batches: [B], the class)
  at::Tensor counts;                       // [B] int64: valid boxes per image
  std::vector<int> image_indices;          // into the dataset
  std::vector<Affine> transforms;          // original image -> network input (pixels), per image
};

// Decoded images kept in memory (data.cache: ram), one slot per dataset image, filled the first time
// an image is needed; shared by the loader's workers (and kept across the loaders of one run).
class ImageCache {
 public:
  explicit ImageCache(std::size_t images);
  // Image i, decoded by `load` the first time (a failure leaves the slot empty: the next call tries again).
  cv::Mat get(std::size_t i, const std::function<cv::Mat()>& load);
  std::size_t size() const { return slots_.size(); }

 private:
  std::vector<cv::Mat> slots_;
  std::unique_ptr<std::once_flag[]> once_;
};

struct LoaderOptions {
  int batch_size = 8;
  int workers = 2;   // 0: batches are built in the caller's thread
  int prefetch = 4;  // batches in flight ahead of the caller (at least `workers`: every worker busy)
  uint64_t seed = 0;
  bool train = true;                        // shuffle each epoch, augment, drop the last partial batch
  int max_boxes = 30;                       // M; extra boxes are dropped at random (darknet shuffles, then truncates)
  SampleMode sample = SampleMode::Shuffle;  // training order (epoch_order)
  AugmentOptions augment;
  EvalTransform eval_transform = EvalTransform::Letterbox;
  int input_size = 416;
  // Training: input size of batch k (multi-scale); unset means input_size.
  std::function<int(int64_t)> size_for_batch;
  int64_t start_batch = 0;   // first batch of the stream (resume)
  int64_t num_batches = -1;  // batches to produce; -1: one epoch (evaluation) or forever (train)
  // Training on several processes: batch_size is the global (micro-)batch and this process builds
  // images [shard_rank * b / shard_count, (shard_rank + 1) * b / shard_count) of each, augmented
  // exactly as a single process would (a distributed sampler that keeps the global batch).
  int shard_rank = 0;
  int shard_count = 1;
  // Training on CUDA: the images (and a classification batch's labels) are made in page-locked
  // (pinned) host memory, so that their copy to the GPU is asynchronous (non_blocking) and overlaps
  // the step before it. A detection batch's boxes, labels and counts stay pageable (host-only).
  bool pin_memory = false;
  // Batches for a GPU: the images as 8-bit RGB NHWC (a quarter of the bytes), made straight into pinned
  // memory when pin_memory; the conversion to float, the layout and the colour distortion
  // (data.augment.hsv, either mode) run on the device (network_input).
  bool device_side = false;
  // data.cache: ram. Set by the loader for the dataset it is given when cache_images is true and no
  // cache is given; pass one to keep the decoded images across loaders (evaluations of one run).
  bool cache_images = false;
  std::shared_ptr<ImageCache> cache;
};

// The network's input from a batch, on `device` in `format`: float RGB NCHW in [0, 1]. A device_side
// batch is copied as bytes (asynchronously when pinned), distorted in colour and converted there;
// the result equals the host-made batch's images bit for bit (AlexeyAB's colour arithmetic: within
// one level on the pixels OpenCV's vector loop leaves over, distort_hsv_batch).
at::Tensor network_input(const Batch& batch, const c10::Device& device, at::MemoryFormat format);

// The images of training epoch `epoch` in order, deterministic in (seed, epoch): a permutation of
// 0..n-1 (shuffle) or n independent draws with replacement (random, darknet's). Evaluation
// (train = false): 0..n-1.
std::vector<int> epoch_order(int n, uint64_t seed, int64_t epoch, bool train, SampleMode sample);

// Batches per epoch for a dataset of n images.
int64_t batches_per_epoch(int64_t n, int batch_size, bool drop_last);

// Which images batch `index` holds (this process's shard of it, in stream order), its epoch, its
// input size and the seed of each image's augmentation draws: the part of a batch that detection
// and classification share.
struct BatchPlan {
  int64_t epoch = 0;
  int size = 0;
  std::vector<int> images;      // dataset indices
  std::vector<uint64_t> seeds;  // one per image
};
BatchPlan plan_batch(int images, const LoaderOptions& options, int64_t index);

// 8-bit BGR HWC -> float RGB CHW in [0, 1], written straight into a batch tensor.
void pack_image(const cv::Mat& bgr, float* dst);
// 8-bit BGR HWC -> 8-bit RGB HWC, written straight into a device_side batch.
void pack_image_bytes(const cv::Mat& bgr, uint8_t* dst);

// Builds batch `index` directly (what the workers run); thread-safe.
Batch make_batch(const Dataset& dataset, const LoaderOptions& options, int64_t index);

// Builds batch k of a stream (thread-safe); the Loader runs it on its workers.
using BatchMaker = std::function<Batch(int64_t)>;

class Loader {
 public:
  Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
  // Any dataset of `images` images (classification: image_folder.hpp).
  Loader(BatchMaker make, int64_t images, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch in stream order, or nothing at the end. A worker's error (an unreadable
  // image, say) is rethrown here.
  std::optional<Batch> next();
  int64_t total_batches() const { return end_ - options_.start_batch; }

 private:
  void worker_loop();
  Batch produce(int64_t index) const;  // make_, then pinned when options_.pin_memory

  BatchMaker make_;
  LoaderOptions options_;
  int64_t end_;       // one past the last batch index (INT64_MAX: endless)
  int64_t next_out_;  // next index handed to the caller
  int64_t next_job_;  // next index a worker picks up
  std::map<int64_t, Batch> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::mutex mutex_;
  std::condition_variable cv_work_, cv_ready_;
  std::vector<std::thread> workers_;
};

// A loader's batches for a device, one batch ahead: the batch after the one handed out is taken from
// the loader at once and its images (a device_side batch's bytes and colour draws, a classification
// batch's labels) start their copy to the device. On CUDA that copy runs on a side stream, so that
// batch k+1 crosses while step k computes; the caller's stream waits for it (an event) when the
// batch is handed out, and the caching allocator is told that the caller's stream uses its memory.
// Elsewhere the batch is handed out as the loader made it (network_input copies it). Either way
// the batches, and their order, are the loader's.
class DeviceFeed {
 public:
  DeviceFeed(std::unique_ptr<Loader> loader, const c10::Device& device);
  ~DeviceFeed();
  DeviceFeed(const DeviceFeed&) = delete;
  DeviceFeed& operator=(const DeviceFeed&) = delete;
  // The next batch (its copy waited for), or nothing at the end; starts the copy of the one after.
  std::optional<Batch> next();

 private:
  void start();  // the loader's next batch into ahead_, its copy started
  struct Copy;
  std::unique_ptr<Loader> loader_;
  c10::Device device_;
  bool started_ = false;
  std::optional<Batch> ahead_;
  std::unique_ptr<Copy> copy_;  // CUDA: the side stream and the event of ahead_'s copy
};

}  // namespace yolo2::data
