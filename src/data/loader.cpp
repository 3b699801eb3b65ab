#include "yolo2/data/loader.hpp"

#include <ATen/ATen.h>
#include <c10/core/Event.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <array>
#include <limits>
#include <numeric>

#include "yolo2/data/augment.hpp"
#include "yolo2/data/image_io.hpp"
#include "yolo2/error.hpp"
#include "yolo2/util/rng.hpp"

namespace yolo2::data {

namespace {

// Distinct streams of the seed, so that shuffling and augmentation never share draws.
constexpr uint64_t kShuffleStream = 0x5348554646ULL;
constexpr uint64_t kAugmentStream = 0x41554734ULL;

}  // namespace

std::vector<int> epoch_order(int n, uint64_t seed, int64_t epoch, bool train, SampleMode sample) {
  std::vector<int> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  if (!train) return order;
  util::Rng rng(util::mix_seed(util::mix_seed(seed, kShuffleStream), static_cast<uint64_t>(epoch)));
  if (sample == SampleMode::Random) {
    // darknet's get_random_paths: every image drawn independently (`rand() % m`), with replacement.
    for (auto& i : order) i = static_cast<int>(rng.uniform_int(0, n - 1));
    return order;
  }
  for (int i = n - 1; i > 0; --i)
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(rng.uniform_int(0, i))]);
  return order;
}

namespace {

cv::Mat read_image(const ImageRecord& rec) {
  cv::Mat image;
  try {
    image = read_image_file(rec.image_path);
  } catch (const Error& e) {
    // Found at decode time (damaged data inside the file); the load's checks (and
    // data.skip_bad_images) see only empty and truncated files.
    throw Error(std::string(e.what()) +
                " (`yolo2 stats --check-images` decodes every image of a split and lists all such files)");
  }
  if (image.cols != rec.width || image.rows != rec.height)
    throw Error(rec.image_path + ": image is " + std::to_string(image.cols) + "x" + std::to_string(image.rows) +
                " but its annotation " + rec.annotation + " says " + std::to_string(rec.width) + "x" +
                std::to_string(rec.height));
  return image;
}

}  // namespace

void pack_image(const cv::Mat& bgr, float* dst) {
  const int h = bgr.rows, w = bgr.cols;
  const std::size_t plane = static_cast<std::size_t>(h) * static_cast<std::size_t>(w);
  float* r = dst;
  float* g = dst + plane;
  float* b = dst + 2 * plane;
  constexpr float kScale = 1.0f / 255.0f;
  for (int y = 0; y < h; ++y) {
    const uint8_t* row = bgr.ptr<uint8_t>(y);
    const std::size_t base = static_cast<std::size_t>(y) * static_cast<std::size_t>(w);
    for (int x = 0; x < w; ++x) {
      b[base + x] = row[3 * x] * kScale;
      g[base + x] = row[3 * x + 1] * kScale;
      r[base + x] = row[3 * x + 2] * kScale;
    }
  }
}

void pack_image_bytes(const cv::Mat& bgr, uint8_t* dst) {
  for (int y = 0; y < bgr.rows; ++y) {
    const uint8_t* row = bgr.ptr<uint8_t>(y);
    uint8_t* out = dst + static_cast<std::size_t>(y) * static_cast<std::size_t>(bgr.cols) * 3;
    for (int x = 0; x < bgr.cols; ++x) {
      out[3 * x] = row[3 * x + 2];
      out[3 * x + 1] = row[3 * x + 1];
      out[3 * x + 2] = row[3 * x];
    }
  }
}

ImageCache::ImageCache(std::size_t images) : slots_(images), once_(new std::once_flag[images]) {}

cv::Mat ImageCache::get(std::size_t i, const std::function<cv::Mat()>& load) {
  if (i >= slots_.size())
    throw Error("image cache: image " + std::to_string(i) + " of " + std::to_string(slots_.size()));
  std::call_once(once_[i], [&] { slots_[i] = load(); });
  return slots_[i];  // shared, never written to: the augmentation warps into a new image
}

at::Tensor network_input(const Batch& batch, const c10::Device& device, at::MemoryFormat format) {
  // Pinned batches (CUDA) copy asynchronously, behind the work already queued on the device.
  at::Tensor x = batch.images.to(device, /*non_blocking=*/true);
  if (x.scalar_type() == at::kFloat) return x.contiguous(format);
  if (batch.colour.defined())
    x = distort_hsv_batch(x, batch.colour.to(device, /*non_blocking=*/true), batch.colour_mode);
  // pack_image's arithmetic: byte x (1 / 255 in float). NHWC permuted to NCHW is channels-last already.
  return x.permute({0, 3, 1, 2}).to(at::kFloat).mul_(static_cast<double>(1.0f / 255.0f)).contiguous(format);
}

int64_t batches_per_epoch(int64_t n, int batch_size, bool drop_last) {
  return drop_last ? n / batch_size : (n + batch_size - 1) / batch_size;
}

BatchPlan plan_batch(int n, const LoaderOptions& opt, int64_t index) {
  const int64_t per_epoch = batches_per_epoch(n, opt.batch_size, opt.train);
  if (per_epoch <= 0)
    throw Error("the training set has " + std::to_string(n) + " images, fewer than one batch of " +
                std::to_string(opt.batch_size));
  BatchPlan plan;
  plan.epoch = index / per_epoch;
  const int64_t pos = index % per_epoch;
  const std::vector<int> order = epoch_order(n, opt.seed, plan.epoch, opt.train, opt.sample);
  const int shards = opt.train ? opt.shard_count : 1;
  if (shards < 1 || opt.shard_rank < 0 || opt.shard_rank >= shards || opt.batch_size % shards != 0)
    throw Error("loader: shard " + std::to_string(opt.shard_rank) + " of " + std::to_string(shards) +
                " cannot split a batch of " + std::to_string(opt.batch_size));
  const int64_t local = opt.batch_size / shards;
  const int64_t offset = opt.shard_rank * local;  // this shard's first slot in the global batch
  const int64_t first = pos * opt.batch_size + offset;
  const int64_t count = std::min<int64_t>(local, n - first);
  plan.size = opt.train && opt.size_for_batch ? opt.size_for_batch(index) : opt.input_size;
  for (int64_t j = 0; j < count; ++j) {
    plan.images.push_back(order[static_cast<std::size_t>(first + j)]);
    plan.seeds.push_back(util::mix_seed(util::mix_seed(opt.seed, kAugmentStream),
                                        static_cast<uint64_t>(index * opt.batch_size + offset + j)));
  }
  return plan;
}

namespace {

// One image of a batch, at the network's input size, with its boxes in input pixels: darknet's
// training augmentation (the colour left to the device when `colour_later`) or the evaluation
// transform.
struct Sized {
  cv::Mat image;
  std::vector<LabeledBox> boxes;
  Affine affine;
  std::array<double, 3> colour{};  // dhue, dsat, dexp (training)
};

Sized size_image(const cv::Mat& image, std::vector<LabeledBox> in, const LoaderOptions& opt, int s, uint64_t seed,
                 bool colour_later) {
  Sized r;
  if (!opt.train) {
    r.affine = eval_affine(image.cols, image.rows, s, opt.eval_transform);
    r.image = warp_image(image, r.affine, s, false);
    r.boxes = transform_boxes(in, r.affine, s, 0.0);
    return r;
  }
  util::Rng rng(seed);
  // darknet shuffles the boxes before truncating to max_boxes (randomize_boxes).
  for (std::size_t i = in.size(); i > 1; --i)
    std::swap(in[i - 1], in[static_cast<std::size_t>(rng.uniform_int(0, static_cast<int64_t>(i) - 1))]);
  Augmented a = augment_train(image, in, s, opt.augment, rng, !colour_later);
  r.image = std::move(a.image);
  r.boxes = std::move(a.boxes);
  r.affine = a.draw.affine;
  r.colour = {a.draw.dhue, a.draw.dsat, a.draw.dexp};
  return r;
}

// The batch's tensors, empty: images (bytes NHWC for the device, else float NCHW), the colour draws
// a device applies, and the zero-padded boxes, labels and counts.
void allocate(Batch& batch, int64_t count, const LoaderOptions& opt, bool colour_later) {
  const int s = batch.size, m = opt.max_boxes;
  batch.colour_mode = opt.augment.hsv;
  batch.images = opt.device_side
                     ? at::empty({count, s, s, 3}, at::TensorOptions(at::kByte).pinned_memory(opt.pin_memory))
                     : at::empty({count, 3, s, s}, at::kFloat);
  if (colour_later) batch.colour = at::empty({count, 3}, at::TensorOptions(at::kDouble).pinned_memory(opt.pin_memory));
  batch.boxes = at::zeros({count, m, 4}, at::kFloat);
  batch.labels = at::full({count, m}, -1, at::kLong);
  batch.counts = at::zeros({count}, at::kLong);
}

// Image j's pixels and (up to max_boxes) boxes, normalised to the input, into the batch.
void put_image(Batch& batch, int64_t j, const Sized& sized, const LoaderOptions& opt) {
  const int s = batch.size, m = opt.max_boxes;
  if (opt.device_side)
    pack_image_bytes(sized.image, batch.images.data_ptr<uint8_t>() + j * s * s * 3);
  else
    pack_image(sized.image, batch.images.data_ptr<float>() + j * 3 * s * s);
  const int kept = std::min<int>(m, static_cast<int>(sized.boxes.size()));
  batch.counts.data_ptr<int64_t>()[j] = kept;
  for (int b = 0; b < kept; ++b) {
    const LabeledBox& box = sized.boxes[static_cast<std::size_t>(b)];
    float* dst = batch.boxes.data_ptr<float>() + (j * m + b) * 4;
    dst[0] = box.x1 / static_cast<float>(s);
    dst[1] = box.y1 / static_cast<float>(s);
    dst[2] = box.x2 / static_cast<float>(s);
    dst[3] = box.y2 / static_cast<float>(s);
    batch.labels.data_ptr<int64_t>()[j * m + b] = box.label;
  }
}

}  // namespace

Batch make_batch(const Dataset& ds, const LoaderOptions& opt, int64_t index) {
  const BatchPlan plan = plan_batch(static_cast<int>(ds.images.size()), opt, index);
  Batch batch;
  batch.index = index;
  batch.epoch = plan.epoch;
  batch.size = plan.size;
  const auto count = static_cast<int64_t>(plan.images.size());
  // The colour distortion (either mode) on the device for a device_side batch.
  const bool colour_later = opt.device_side && opt.train;
  allocate(batch, count, opt, colour_later);
  for (int64_t j = 0; j < count; ++j) {
    const int idx = plan.images[static_cast<std::size_t>(j)];
    const ImageRecord& rec = ds.images[static_cast<std::size_t>(idx)];
    batch.image_indices.push_back(idx);
    const cv::Mat image =
        opt.cache ? opt.cache->get(static_cast<std::size_t>(idx), [&] { return read_image(rec); }) : read_image(rec);
    std::vector<LabeledBox> in;
    in.reserve(rec.objects.size());
    for (const auto& o : rec.objects) in.push_back({o.x1, o.y1, o.x2, o.y2, o.label});
    const Sized sized = size_image(image, std::move(in), opt, batch.size,
                                   opt.train ? plan.seeds[static_cast<std::size_t>(j)] : 0, colour_later);
    batch.transforms.push_back(sized.affine);
    if (colour_later) std::copy(sized.colour.begin(), sized.colour.end(), batch.colour.data_ptr<double>() + 3 * j);
    put_image(batch, j, sized, opt);
  }
  return batch;
}

namespace {
BatchMaker voc_batches(std::shared_ptr<const Dataset> dataset, LoaderOptions options) {
  if (!dataset || dataset->images.empty()) throw Error("the loader was given an empty dataset");
  if (options.cache_images && !options.cache) options.cache = std::make_shared<ImageCache>(dataset->images.size());
  if (options.cache && options.cache->size() != dataset->images.size())
    throw Error("image cache of " + std::to_string(options.cache->size()) + " images for a dataset of " +
                std::to_string(dataset->images.size()));
  return [dataset, options](int64_t k) { return make_batch(*dataset, options, k); };
}
}  // namespace

Loader::Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    // `options` is copied twice, not moved: the order in which arguments are evaluated is unspecified.
    : Loader(voc_batches(dataset, options), dataset ? static_cast<int64_t>(dataset->images.size()) : 0, options) {}

Loader::Loader(BatchMaker make, int64_t images, LoaderOptions options)
    : make_(std::move(make)), options_(std::move(options)) {
  if (images <= 0) throw Error("the loader was given an empty dataset");
  if (options_.batch_size < 1) throw Error("loader batch size must be >= 1");
  const int64_t per_epoch = batches_per_epoch(images, options_.batch_size, options_.train);
  if (per_epoch <= 0)
    throw Error("the training set has " + std::to_string(images) + " images, fewer than one batch of " +
                std::to_string(options_.batch_size));
  next_out_ = next_job_ = options_.start_batch;
  if (options_.num_batches >= 0)
    end_ = options_.start_batch + options_.num_batches;
  else
    end_ = options_.train ? std::numeric_limits<int64_t>::max() : options_.start_batch + per_epoch;
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
}

Batch Loader::produce(int64_t index) const {
  Batch b = make_(index);
  if (options_.pin_memory) {
    // Only what goes to the GPU: the images, and a classification batch's labels ([B]). A detection
    // batch's boxes, labels and counts stay on the host (the region targets are built there).
    if (b.images.defined() && !b.images.is_pinned()) b.images = b.images.pin_memory();
    if (b.labels.defined() && b.labels.dim() == 1) b.labels = b.labels.pin_memory();
  }
  return b;
}

void Loader::worker_loop() {
  // Batches in flight (being built or ready): at least one per worker, so that every worker has a
  // batch to build (with fewer, data.prefetch capped how many cores worked, whatever data.workers said).
  const int64_t ahead = std::max({1, options_.prefetch, options_.workers});
  for (;;) {
    int64_t job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_work_.wait(lock, [&] { return stop_ || error_ || (next_job_ < end_ && next_job_ - next_out_ < ahead); });
      if (stop_ || error_) return;
      job = next_job_++;
    }
    try {
      Batch b = produce(job);
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(job, std::move(b));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      // A failed batch leaves a marker (a batch without images) at its place in the stream, so
      // that next() still hands out every batch before it and fails exactly where the
      // single-threaded loader would. error_ is the failure of the earliest failed batch.
      const bool earlier_failure = std::any_of(ready_.begin(), ready_.lower_bound(job),
                                               [](const auto& kv) { return !kv.second.images.defined(); });
      if (!earlier_failure) error_ = std::current_exception();
      Batch marker;
      marker.index = job;
      ready_.emplace(job, std::move(marker));
    }
    cv_ready_.notify_all();
  }
}

std::optional<Batch> Loader::next() {
  if (next_out_ >= end_) return std::nullopt;
  if (workers_.empty()) {
    // Advance only on success: a failed batch fails again when retried, as with workers.
    Batch b = produce(next_out_);
    ++next_out_;
    return b;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  // Every batch up to the earliest failure is eventually produced (jobs are taken in order and
  // a started job always finishes), so waiting for this one's slot cannot hang.
  cv_ready_.wait(lock, [&] { return ready_.count(next_out_) > 0; });
  auto it = ready_.find(next_out_);
  if (!it->second.images.defined()) std::rethrow_exception(error_);  // stays: fails again
  Batch b = std::move(it->second);
  ready_.erase(it);
  ++next_out_;
  lock.unlock();
  cv_work_.notify_all();
  return b;
}

struct DeviceFeed::Copy {
  // Device-generic stream and event API (c10): the same code in LibTorch 1.13 and 2.x, no CUDA headers.
  c10::impl::VirtualGuardImpl guard;
  c10::Device device;  // with its index ("cuda" alone: the current one)
  c10::Stream side;
  c10::Event ready;
  explicit Copy(const c10::Device& d)
      : guard(d.type()),
        device(d.has_index() ? d : guard.getDevice()),
        side(guard.getStreamFromGlobalPool(device, /*isHighPriority=*/false)),
        ready(d.type()) {}
};

DeviceFeed::DeviceFeed(std::unique_ptr<Loader> loader, const c10::Device& device)
    : loader_(std::move(loader)), device_(device) {
  if (device_.is_cuda()) copy_ = std::make_unique<Copy>(device_);
}

DeviceFeed::~DeviceFeed() = default;

void DeviceFeed::start() {
  ahead_ = loader_->next();
  if (!ahead_ || !copy_) return;
  const c10::StreamGuard on_side(copy_->side);
  Batch& b = *ahead_;
  b.images = b.images.to(copy_->device, /*non_blocking=*/true);
  if (b.colour.defined()) b.colour = b.colour.to(copy_->device, /*non_blocking=*/true);
  if (b.labels.defined() && b.labels.dim() == 1) b.labels = b.labels.to(copy_->device, /*non_blocking=*/true);
  copy_->ready.record(copy_->side);
}

std::optional<Batch> DeviceFeed::next() {
  if (!started_) {
    started_ = true;
    start();
  }
  std::optional<Batch> b = std::move(ahead_);
  ahead_.reset();
  if (b && copy_) {
    const c10::Stream current = copy_->guard.getStream(copy_->device);
    copy_->ready.block(current);
    for (const at::Tensor* t : {&b->images, &b->colour, &b->labels})
      if (t->defined() && t->is_cuda()) copy_->guard.recordDataPtrOnStream(t->storage().data_ptr(), current);
  }
  if (b) start();  // the next copy goes while this batch is computed on
  return b;
}

}  // namespace yolo2::data
