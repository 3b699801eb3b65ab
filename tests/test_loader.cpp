// Tests of the threaded batch loader: tensor shapes and padding, determinism across worker
// counts and resume points, evaluation order, multi-scale sizes, truncation to max_boxes and
// clean error reporting for unreadable images.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "test_util.hpp"
#include "yolo2/data/loader.hpp"
#include "yolo2/error.hpp"
#include "yolo2/util/rng.hpp"

namespace {

using yolo2::data::Batch;
using yolo2::data::Dataset;
using yolo2::data::ImageRecord;
using yolo2::data::Loader;
using yolo2::data::LoaderOptions;
using yolo2::data::Object;
using yolo2::testing::TempDir;

constexpr int kClasses = 3;

// `n` small noisy JPEGs (80x60 and 64x64 alternately) with 1..4 objects each; image i has its
// objects at positions that depend on i. Noise makes every augmentation draw visible in pixels.
std::shared_ptr<Dataset> make_dataset(const TempDir& dir, int n, int objects_max = 4) {
  auto ds = std::make_shared<Dataset>();
  ds->class_names = {"a", "b", "c"};
  yolo2::util::Rng rng(123);
  for (int i = 0; i < n; ++i) {
    ImageRecord r;
    r.id = "img" + std::to_string(i);
    r.width = i % 2 ? 64 : 80;
    r.height = i % 2 ? 64 : 60;
    r.image_path = dir.file(r.id + ".jpg");
    r.annotation = dir.file(r.id + ".xml");
    cv::Mat img(r.height, r.width, CV_8UC3);
    cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(256));
    const int objects = 1 + i % objects_max;
    for (int k = 0; k < objects; ++k) {
      Object o;
      o.label = (i + k) % kClasses;
      o.name = ds->class_names[static_cast<std::size_t>(o.label)];
      o.x1 = static_cast<float>(2 + 3 * k + i % 5);
      o.y1 = static_cast<float>(3 + 2 * k);
      o.x2 = o.x1 + 20 + static_cast<float>(rng.uniform_int(0, 20));
      o.y2 = o.y1 + 15 + static_cast<float>(rng.uniform_int(0, 20));
      cv::rectangle(img, cv::Point(int(o.x1), int(o.y1)), cv::Point(int(o.x2), int(o.y2)),
                    cv::Scalar(40 * k, 255 - 40 * k, 80), cv::FILLED);
      r.objects.push_back(o);
    }
    EXPECT_TRUE(cv::imwrite(r.image_path, img));
    ds->images.push_back(r);
  }
  return ds;
}

LoaderOptions train_options() {
  LoaderOptions o;
  o.batch_size = 4;
  o.workers = 0;
  o.prefetch = 2;
  o.seed = 5;
  o.train = true;
  o.max_boxes = 6;
  o.input_size = 64;
  return o;
}

std::vector<Batch> collect(std::shared_ptr<const Dataset> ds, const LoaderOptions& o) {
  Loader loader(std::move(ds), o);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

void expect_same_batch(const Batch& a, const Batch& b, const std::string& what) {
  EXPECT_EQ(a.index, b.index) << what;
  EXPECT_EQ(a.epoch, b.epoch) << what;
  EXPECT_EQ(a.size, b.size) << what;
  EXPECT_EQ(a.image_indices, b.image_indices) << what;
  ASSERT_EQ(a.images.sizes(), b.images.sizes()) << what;
  EXPECT_TRUE(at::equal(a.images, b.images)) << what << ": images differ";
  EXPECT_TRUE(at::equal(a.boxes, b.boxes)) << what << ": boxes differ";
  EXPECT_TRUE(at::equal(a.labels, b.labels)) << what << ": labels differ";
  EXPECT_TRUE(at::equal(a.counts, b.counts)) << what << ": counts differ";
}

using yolo2::testing::error_of;

TEST(Loader, BatchShapesRangesAndPadding) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 8);
  LoaderOptions o = train_options();
  o.num_batches = 4;  // two epochs
  const auto batches = collect(ds, o);
  ASSERT_EQ(batches.size(), 4u);
  int boxes_seen = 0;
  for (const Batch& b : batches) {
    EXPECT_EQ(b.size, 64);
    EXPECT_EQ(b.images.sizes(), (at::IntArrayRef{4, 3, 64, 64}));
    EXPECT_EQ(b.images.scalar_type(), at::kFloat);
    EXPECT_GE(b.images.min().item<float>(), 0.0f);
    EXPECT_LE(b.images.max().item<float>(), 1.0f);
    EXPECT_EQ(b.boxes.sizes(), (at::IntArrayRef{4, 6, 4}));
    EXPECT_EQ(b.boxes.scalar_type(), at::kFloat);
    EXPECT_EQ(b.labels.sizes(), (at::IntArrayRef{4, 6}));
    EXPECT_EQ(b.labels.scalar_type(), at::kLong);
    EXPECT_EQ(b.counts.sizes(), (at::IntArrayRef{4}));
    EXPECT_EQ(b.image_indices.size(), 4u);
    EXPECT_EQ(b.transforms.size(), 4u);
    const auto boxes = b.boxes.accessor<float, 3>();
    const auto labels = b.labels.accessor<int64_t, 2>();
    const auto counts = b.counts.accessor<int64_t, 1>();
    for (int j = 0; j < 4; ++j) {
      const int64_t n = counts[j];
      EXPECT_GE(n, 0);
      EXPECT_LE(n, 6);
      // The augmentation never adds boxes.
      const auto& rec = ds->images[static_cast<std::size_t>(b.image_indices[static_cast<std::size_t>(j)])];
      EXPECT_LE(n, static_cast<int64_t>(rec.objects.size()));
      for (int k = 0; k < 6; ++k) {
        if (k < n) {
          ++boxes_seen;
          EXPECT_GE(labels[j][k], 0);
          EXPECT_LT(labels[j][k], kClasses);
          for (int c = 0; c < 4; ++c) {
            EXPECT_GE(boxes[j][k][c], 0.0f);
            EXPECT_LE(boxes[j][k][c], 1.0f);
          }
          EXPECT_LT(boxes[j][k][0], boxes[j][k][2]);
          EXPECT_LT(boxes[j][k][1], boxes[j][k][3]);
        } else {
          EXPECT_EQ(labels[j][k], -1);
          for (int c = 0; c < 4; ++c) EXPECT_EQ(boxes[j][k][c], 0.0f);
        }
      }
    }
  }
  EXPECT_GT(boxes_seen, 10);
}

TEST(Loader, TrainingEpochIsAPermutation) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 10);
  LoaderOptions o = train_options();
  o.num_batches = 2;  // one epoch of 10 images at batch 4: the last partial batch is dropped
  const auto batches = collect(ds, o);
  std::vector<int> seen;
  for (const auto& b : batches) {
    EXPECT_EQ(b.epoch, 0);
    seen.insert(seen.end(), b.image_indices.begin(), b.image_indices.end());
  }
  std::vector<int> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end()) << "an image repeats in an epoch";
  std::vector<int> identity(8);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(seen, identity) << "training order is not shuffled";
}

TEST(Loader, RandomSamplingDrawsWithReplacementAsDarknet) {
  using yolo2::data::epoch_order;
  using yolo2::data::SampleMode;
  const int n = 200;
  const std::vector<int> a = epoch_order(n, 7, 0, true, SampleMode::Random);
  ASSERT_EQ(a.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(a, epoch_order(n, 7, 0, true, SampleMode::Random)) << "not deterministic in (seed, epoch)";
  EXPECT_NE(a, epoch_order(n, 7, 1, true, SampleMode::Random)) << "every epoch draws anew";
  EXPECT_TRUE(std::all_of(a.begin(), a.end(), [&](int i) { return i >= 0 && i < n; }));
  // With replacement: n draws from n images miss about 1/e of them (a permutation misses none).
  std::vector<int> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  const auto distinct = std::unique(sorted.begin(), sorted.end()) - sorted.begin();
  EXPECT_NEAR(static_cast<double>(distinct) / n, 1 - std::exp(-1.0), 0.08);
  std::vector<int> perm = epoch_order(n, 7, 0, true, SampleMode::Shuffle);
  std::sort(perm.begin(), perm.end());
  EXPECT_EQ(std::unique(perm.begin(), perm.end()) - perm.begin(), n);

  // Through the loader: the configured mode reaches the batches.
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 10);
  LoaderOptions o = train_options();
  o.sample = SampleMode::Random;
  o.num_batches = 2;
  std::vector<int> seen;
  for (const auto& b : collect(ds, o)) seen.insert(seen.end(), b.image_indices.begin(), b.image_indices.end());
  const std::vector<int> want = epoch_order(10, o.seed, 0, true, SampleMode::Random);
  EXPECT_EQ(seen, std::vector<int>(want.begin(), want.begin() + 8));
}

TEST(Loader, SameSeedSameTensorsForAnyWorkerCount) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 10);
  LoaderOptions o = train_options();
  o.num_batches = 6;  // 2 batches per epoch: crosses two epoch boundaries
  o.size_for_batch = [](int64_t k) { return 32 * static_cast<int>(2 + k % 3); };
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 2}) {
    o.workers = workers;
    runs.push_back(collect(ds, o));
    ASSERT_EQ(runs.back().size(), 6u) << workers << " workers";
  }
  for (std::size_t w = 1; w < runs.size(); ++w)
    for (std::size_t k = 0; k < 6; ++k)
      expect_same_batch(runs[0][k], runs[w][k],
                        "batch " + std::to_string(k) + " with " + std::to_string(w) + " workers");
  // Twice the same worker count gives the same stream too.
  o.workers = 2;
  const auto again = collect(ds, o);
  for (std::size_t k = 0; k < 6; ++k) expect_same_batch(runs[0][k], again[k], "rerun");
}

// Batches for a GPU (device_side: 8-bit RGB NHWC, darknet's colour distortion and the conversion to
// float done by network_input on the batch's device, here the CPU) give the host-made batches' network
// input bit for bit, in training (full augmentation; then strong colour draws: hue wrapping, S and V
// past 1) and in evaluation, in both layouts; boxes, labels and counts are the same.
TEST(Loader, DeviceSideBatchesGiveTheHostInputBitForBit) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 12);
  for (const bool strong : {false, true})
    for (const bool train : {true, false}) {
      LoaderOptions o = train_options();
      o.train = train;
      o.workers = 2;
      o.num_batches = train ? 6 : -1;
      o.size_for_batch = [](int64_t k) { return 32 * static_cast<int>(2 + k % 3); };
      if (strong) o.augment.hue = 0.5, o.augment.saturation = 4, o.augment.exposure = 4;
      const auto host = collect(ds, o);
      o.device_side = true;
      const auto dev = collect(ds, o);
      ASSERT_EQ(dev.size(), host.size());
      for (std::size_t k = 0; k < host.size(); ++k) {
        const std::string what =
            std::string(train ? "train" : "eval") + (strong ? " strong" : "") + " batch " + std::to_string(k);
        EXPECT_EQ(dev[k].images.scalar_type(), at::kByte) << what;
        EXPECT_EQ(dev[k].colour.defined(), train) << what;
        const at::Tensor x = yolo2::data::network_input(dev[k], at::kCPU, at::MemoryFormat::Contiguous);
        const at::Tensor xl = yolo2::data::network_input(dev[k], at::kCPU, at::MemoryFormat::ChannelsLast);
        ASSERT_EQ(x.sizes(), host[k].images.sizes()) << what;
        EXPECT_TRUE(at::equal(x, host[k].images)) << what;
        EXPECT_TRUE(xl.is_contiguous(at::MemoryFormat::ChannelsLast)) << what;
        EXPECT_TRUE(at::equal(xl, host[k].images)) << what;
        EXPECT_TRUE(at::equal(dev[k].boxes, host[k].boxes)) << what;
        EXPECT_TRUE(at::equal(dev[k].labels, host[k].labels)) << what;
        EXPECT_TRUE(at::equal(dev[k].counts, host[k].counts)) << what;
      }
    }
  // AlexeyAB's 8-bit OpenCV colour arithmetic on the device too: the draws travel with the batch, and
  // the input is the host's within one level (1 / 255) on the few pixels where OpenCV rounds
  // instead of truncating (distort_hsv_batch).
  LoaderOptions o = train_options();
  o.num_batches = 2;
  o.augment.hsv = yolo2::data::HsvMode::AlexeyAB;
  const auto host = collect(ds, o);
  o.device_side = true;
  const auto dev = collect(ds, o);
  for (std::size_t k = 0; k < host.size(); ++k) {
    EXPECT_TRUE(dev[k].colour.defined());
    EXPECT_EQ(dev[k].colour_mode, yolo2::data::HsvMode::AlexeyAB);
    const at::Tensor diff =
        (yolo2::data::network_input(dev[k], at::kCPU, at::MemoryFormat::Contiguous) - host[k].images).abs();
    EXPECT_LE(diff.max().item<float>(), 1.0f / 255.0f + 1e-6f) << "batch " << k;
    EXPECT_LT((diff > 0).to(at::kDouble).mean().item<double>(), 0.02) << "batch " << k;
  }
}

// DeviceFeed (one batch ahead) hands out the loader's batches, in order, unchanged, to the end; on the
// CPU it copies nothing (network_input does, as before).
TEST(Loader, DeviceFeedKeepsTheLoadersBatchesAndOrder) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 8);
  LoaderOptions o = train_options();
  o.num_batches = 5;
  o.workers = 2;
  const auto plain = collect(ds, o);
  yolo2::data::DeviceFeed feed(std::make_unique<yolo2::data::Loader>(ds, o), at::kCPU);
  for (std::size_t k = 0; k < plain.size(); ++k) {
    const std::optional<Batch> b = feed.next();
    ASSERT_TRUE(b.has_value()) << k;
    EXPECT_EQ(b->index, plain[k].index);
    EXPECT_TRUE(at::equal(b->images, plain[k].images)) << k;
    EXPECT_TRUE(at::equal(b->boxes, plain[k].boxes)) << k;
  }
  EXPECT_FALSE(feed.next().has_value());
  EXPECT_FALSE(feed.next().has_value());
}

// data.cache: ram decodes each image once (a deleted JPEG is no longer needed after its first use)
// and gives the same batches as decoding every time; a cache shared by two loaders serves the second.
TEST(Loader, RamCacheDecodesOnceAndChangesNothing) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 8);
  LoaderOptions o = train_options();
  o.num_batches = 6;  // three epochs of 2 batches
  o.workers = 2;
  const auto plain = collect(ds, o);
  o.cache = std::make_shared<yolo2::data::ImageCache>(ds->images.size());
  LoaderOptions first = o;
  first.num_batches = 2;  // one epoch: every image decoded once
  collect(ds, first);
  for (const auto& im : ds->images) std::filesystem::remove(im.image_path);
  const auto cached = collect(ds, o);  // from the cache only
  ASSERT_EQ(cached.size(), plain.size());
  for (std::size_t k = 0; k < plain.size(); ++k) expect_same_batch(plain[k], cached[k], "batch " + std::to_string(k));
  // Without a cache the missing files are an error naming one.
  o.cache = nullptr;
  EXPECT_CONTAINS(error_of([&] { collect(ds, o); }), ".jpg");
  // A cache made for another dataset is refused.
  o.cache = std::make_shared<yolo2::data::ImageCache>(3);
  EXPECT_CONTAINS(error_of([&] { Loader loader(ds, o); }), "image cache of 3 images");
}

TEST(Loader, ResumeAtStartBatchEqualsTheTailOfAFullRun) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 10);
  LoaderOptions o = train_options();
  o.num_batches = 7;
  const auto full = collect(ds, o);
  ASSERT_EQ(full.size(), 7u);
  for (int workers : {0, 2}) {
    LoaderOptions r = o;
    r.workers = workers;
    r.start_batch = 3;  // mid-epoch
    r.num_batches = 4;
    Loader loader(ds, r);
    EXPECT_EQ(loader.total_batches(), 4);
    std::vector<Batch> tail;
    while (auto b = loader.next()) tail.push_back(std::move(*b));
    ASSERT_EQ(tail.size(), 4u);
    for (std::size_t k = 0; k < 4; ++k)
      expect_same_batch(full[3 + k], tail[k],
                        "resumed batch " + std::to_string(3 + k) + " with " + std::to_string(workers) + " workers");
  }
}

TEST(Loader, DifferentSeedsDiffer) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 8);
  LoaderOptions a = train_options();
  a.num_batches = 1;
  LoaderOptions b = a;
  b.seed = a.seed + 1;
  const auto x = collect(ds, a), y = collect(ds, b);
  ASSERT_EQ(x.size(), 1u);
  ASSERT_EQ(y.size(), 1u);
  EXPECT_FALSE(at::equal(x[0].images, y[0].images));
}

TEST(Loader, EvalYieldsEveryImageOnceInOrderWithTheLastPartialBatch) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 10);
  for (int workers : {0, 2}) {
    LoaderOptions o = train_options();
    o.train = false;
    o.workers = workers;
    o.size_for_batch = [](int64_t) { return 96; };  // ignored outside training
    Loader loader(ds, o);
    EXPECT_EQ(loader.total_batches(), 3);
    std::vector<int> seen;
    std::vector<int64_t> sizes;
    while (auto b = loader.next()) {
      EXPECT_EQ(b->size, 64);
      EXPECT_EQ(b->images.size(2), 64);
      sizes.push_back(b->images.size(0));
      seen.insert(seen.end(), b->image_indices.begin(), b->image_indices.end());
    }
    EXPECT_EQ(sizes, (std::vector<int64_t>{4, 4, 2})) << workers << " workers";
    std::vector<int> identity(10);
    std::iota(identity.begin(), identity.end(), 0);
    EXPECT_EQ(seen, identity) << workers << " workers";
    EXPECT_FALSE(loader.next().has_value());  // stays at the end
  }
}

TEST(Loader, EvalLetterboxesBoxesWithoutAugmentation) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 2);
  LoaderOptions o = train_options();
  o.train = false;
  o.batch_size = 2;
  const auto batches = collect(ds, o);
  ASSERT_EQ(batches.size(), 1u);
  // Image 0 is 80x60: letterboxed into 64 it becomes 64x48 at offset (0, 8), scale 0.8.
  const Object& obj = ds->images[0].objects[0];
  const auto box = batches[0].boxes[0][0];
  EXPECT_NEAR(box[0].item<float>(), obj.x1 * 0.8f / 64, 1e-6);
  EXPECT_NEAR(box[1].item<float>(), (obj.y1 * 0.8f + 8) / 64, 1e-6);
  EXPECT_NEAR(box[2].item<float>(), obj.x2 * 0.8f / 64, 1e-6);
  EXPECT_NEAR(box[3].item<float>(), (obj.y2 * 0.8f + 8) / 64, 1e-6);
  EXPECT_EQ(batches[0].labels[0][0].item<int64_t>(), obj.label);
  EXPECT_DOUBLE_EQ(batches[0].transforms[0].by, 8.0);
  // No augmentation: two loads give identical tensors whatever the seed.
  LoaderOptions o2 = o;
  o2.seed = 99;
  expect_same_batch(batches[0], collect(ds, o2)[0], "eval with another seed");
}

TEST(Loader, SizeForBatchIsHonoured) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 8);
  LoaderOptions o = train_options();
  o.workers = 2;
  o.num_batches = 5;
  o.size_for_batch = [](int64_t k) { return k % 2 ? 96 : 32; };
  const auto batches = collect(ds, o);
  ASSERT_EQ(batches.size(), 5u);
  for (const auto& b : batches) {
    const int want = b.index % 2 ? 96 : 32;
    EXPECT_EQ(b.size, want);
    EXPECT_EQ(b.images.sizes(), (at::IntArrayRef{4, 3, want, want}));
  }
}

TEST(Loader, MaxBoxesTruncates) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 4, /*objects_max=*/1);
  // Every image gets 7 objects, more than max_boxes.
  for (auto& rec : ds->images) {
    rec.objects.clear();
    for (int k = 0; k < 7; ++k) {
      Object o;
      o.label = k % kClasses;
      o.x1 = 4.0f + static_cast<float>(k), o.y1 = 4.0f + static_cast<float>(k), o.x2 = 40.0f + static_cast<float>(k),
      o.y2 = 40.0f;
      rec.objects.push_back(o);
    }
  }
  for (bool train : {false, true}) {
    LoaderOptions o = train_options();
    o.train = train;
    o.max_boxes = 3;
    o.num_batches = 1;
    o.augment.jitter = 0;  // keep every box inside the image
    const auto batches = collect(ds, o);
    ASSERT_EQ(batches.size(), 1u);
    const Batch& b = batches[0];
    EXPECT_EQ(b.boxes.sizes(), (at::IntArrayRef{4, 3, 4}));
    for (int j = 0; j < 4; ++j) {
      EXPECT_EQ(b.counts[j].item<int64_t>(), 3) << (train ? "train" : "eval");
      for (int k = 0; k < 3; ++k) EXPECT_GE(b.labels[j][k].item<int64_t>(), 0);
    }
    if (!train) {
      // Without shuffling, the first three objects are the ones kept.
      EXPECT_EQ(b.labels[0][0].item<int64_t>(), 0);
      EXPECT_EQ(b.labels[0][1].item<int64_t>(), 1);
      EXPECT_EQ(b.labels[0][2].item<int64_t>(), 2);
    }
  }
}

// Writes garbage over image `index` of the dataset.
void corrupt(const Dataset& ds, int index) {
  yolo2::testing::write_text(ds.images[static_cast<std::size_t>(index)].image_path,
                             "this is not a JPEG \x01\x02\x03\xff\xd8 garbage");
}

TEST(Loader, CorruptImageThrowsNamingTheFile) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 12);
  corrupt(*ds, 7);  // eval batch 3 at batch size 2
  const std::string bad = ds->images[7].image_path;
  for (int workers : {0, 1, 2}) {
    LoaderOptions o = train_options();
    o.train = false;
    o.batch_size = 2;
    o.workers = workers;
    o.prefetch = 4;
    Loader loader(ds, o);
    // The batches before the broken one arrive normally, whatever the worker count.
    for (int k = 0; k < 3; ++k) {
      std::optional<Batch> b;
      ASSERT_NO_THROW(b = loader.next()) << "batch " << k << ", " << workers << " workers";
      ASSERT_TRUE(b.has_value());
      EXPECT_EQ(b->index, k);
    }
    const std::string msg = error_of([&] { loader.next(); });
    EXPECT_NE(msg.find(bad), std::string::npos) << msg;
    // Asking again does not hang or crash; the error stays.
    EXPECT_THROW(loader.next(), yolo2::Error);
  }
}

TEST(Loader, CorruptImageInTrainingThrowsWithWorkers) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 8);
  corrupt(*ds, 5);
  const std::string bad = ds->images[5].image_path;
  for (int workers : {0, 2}) {
    LoaderOptions o = train_options();
    o.workers = workers;
    Loader loader(ds, o);  // endless: the image comes up within the first epoch
    std::string msg;
    int delivered = 0;
    try {
      for (; delivered < 4; ++delivered) loader.next();
    } catch (const yolo2::Error& e) {
      msg = e.what();
    }
    EXPECT_LT(delivered, 2) << "an epoch of 2 batches passed without the broken image";
    EXPECT_NE(msg.find(bad), std::string::npos) << "'" << msg << "'";
  }
}

TEST(Loader, ImageSizeMismatchWithAnnotationIsAnError) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 2);
  ds->images[1].width = 50;  // the file is 64x64
  LoaderOptions o = train_options();
  o.train = false;
  o.batch_size = 1;
  Loader loader(ds, o);
  EXPECT_NO_THROW(loader.next());
  const std::string msg = error_of([&] { loader.next(); });
  EXPECT_NE(msg.find(ds->images[1].image_path), std::string::npos) << msg;
}

TEST(Loader, DestroyingARunningLoaderDoesNotHang) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 8);
  LoaderOptions o = train_options();
  o.workers = 2;
  {
    Loader loader(ds, o);  // endless, workers busy prefetching
    ASSERT_TRUE(loader.next().has_value());
  }
  {
    Loader idle(ds, o);  // never consumed
  }
  SUCCEED();
}

// data.workers cores build batches at once even when data.prefetch is smaller: the loader keeps at
// least one batch in flight per worker. The maker waits until `workers` builds are running together
// (or 10 s pass, which a loader that lets fewer run at once would take) before it returns.
TEST(Loader, EveryWorkerBuildsABatchAtOnce) {
  constexpr int kWorkers = 6;
  std::mutex m;
  std::condition_variable cv;
  int running = 0, most = 0;
  auto make = [&](int64_t k) {
    std::unique_lock<std::mutex> lock(m);
    most = std::max(most, ++running);
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return most >= kWorkers; });
    --running;
    Batch b;
    b.index = k;
    b.images = at::zeros({1});
    return b;
  };
  LoaderOptions o = train_options();
  o.workers = kWorkers;
  o.prefetch = 2;
  o.batch_size = 1;
  o.num_batches = 2 * kWorkers;
  Loader loader(make, 100, o);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t k = 0; k < 2 * kWorkers; ++k) {
    auto b = loader.next();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->index, k);
  }
  EXPECT_EQ(most, kWorkers) << "batches built at once";
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 9.0);
}

TEST(Loader, RejectsTooFewImagesForOneBatch) {
  TempDir dir("yolo2-loader");
  const auto ds = make_dataset(dir, 3);
  LoaderOptions o = train_options();  // batch 4, drop_last
  EXPECT_THROW(Loader(ds, o), yolo2::Error);
  o.train = false;  // evaluation keeps the partial batch
  EXPECT_EQ(collect(ds, o).size(), 1u);
}

TEST(Loader, BatchesPerEpoch) {
  EXPECT_EQ(yolo2::data::batches_per_epoch(10, 4, true), 2);
  EXPECT_EQ(yolo2::data::batches_per_epoch(10, 4, false), 3);
  EXPECT_EQ(yolo2::data::batches_per_epoch(8, 4, false), 2);
}

}  // namespace
