// CUDA: the same network, loss, decoding and checkpoints on a GPU as on the CPU. The tests that
// need a GPU skip visibly without one (GTEST_SKIP; ctest lists them as "Not Run (Skipped)"); the
// errors for asking for CUDA where there is none run everywhere.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "test_util.hpp"
#include "train_fixtures.hpp"
#include "yolo2/bench/bench.hpp"
#include "yolo2/config.hpp"
#include "yolo2/data/dataset.hpp"
#include "yolo2/data/loader.hpp"
#include "yolo2/error.hpp"
#include "yolo2/eval/decode.hpp"
#include "yolo2/io/checkpoint.hpp"
#include "yolo2/loss/region_loss.hpp"
#include "yolo2/model/yolov2.hpp"
#include "yolo2/ops/boxes.hpp"
#include "yolo2/runtime/build_info.hpp"
#include "yolo2/runtime/distributed.hpp"
#include "yolo2/runtime/precision.hpp"
#include "yolo2/runtime/setup.hpp"
#include "yolo2/train/trainer.hpp"

using namespace yolo2;
using namespace yolo2::testing;
namespace fs = std::filesystem;

namespace {

#define YOLO2_REQUIRE_GPU()                                                                                        \
  do {                                                                                                             \
    if (!torch::cuda::is_available())                                                                              \
      GTEST_SKIP() << "no GPU visible (" << (runtime::cuda_compiled() ? "LibTorch has CUDA" : "CPU-only LibTorch") \
                   << "): this test runs on a CUDA machine";                                                       \
  } while (0)

// fp32 everywhere on the GPU: TF32 would round matmuls and convolutions to 10-bit mantissas.
struct NoTf32 {
  bool matmul = at::globalContext().allowTF32CuBLAS(), cudnn = at::globalContext().allowTF32CuDNN();
  NoTf32() {
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }
  ~NoTf32() {
    at::globalContext().setAllowTF32CuBLAS(matmul);
    at::globalContext().setAllowTF32CuDNN(cudnn);
  }
};

double relative_difference(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.to(at::kCPU, at::kDouble), y = b.to(at::kCPU, at::kDouble);
  return ((x - y).abs().max() / y.abs().max().clamp_min(1e-12)).item<double>();
}

const std::vector<std::string> kClasses{"square", "circle", "triangle", "star", "ring", "cross"};

model::YoloV2 tiny_model(uint64_t seed) {
  ModelOptions m;
  m.width = 0.25;
  m.anchors = {0.4, 0.4, 0.8, 0.8, 1.2, 1.2, 1.7, 1.7, 2.4, 2.4};
  torch::manual_seed(seed);
  return model::YoloV2(model::yolov2_spec(m, static_cast<int>(kClasses.size())));
}

// A batch of 4 images of 96x96 with 1-3 boxes each, as the loader gives it.
struct Batch {
  at::Tensor images, boxes, labels, counts;
};

Batch random_batch(uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  Batch b;
  b.images = at::rand({4, 3, 96, 96}, g);
  const at::Tensor centre = at::rand({4, 3, 2}, g) * 0.6 + 0.2, size = at::rand({4, 3, 2}, g) * 0.3 + 0.1;
  b.boxes = at::cat({centre - size / 2, centre + size / 2}, 2).to(at::kFloat);
  b.labels = at::randint(0, static_cast<int64_t>(kClasses.size()), {4, 3}, g);
  b.counts = at::tensor(std::vector<int64_t>{1, 3, 2, 3});
  return b;
}

loss::RegionLossOptions loss_options(ClassLoss classification) {
  loss::RegionLossOptions o;
  o.anchors = {0.4, 0.4, 0.8, 0.8, 1.2, 1.2, 1.7, 1.7, 2.4, 2.4};
  o.num_classes = static_cast<int>(kClasses.size());
  o.classification = classification;
  o.warmup_images = 100;  // the warm-up term is active at seen = 4
  return o;
}

}  // namespace

// --- everywhere ------------------------------------------------------------------------------

TEST(CudaDevice, AskingForCudaWithoutOneNamesTheKeyAndTheReason) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "a GPU is visible: runtime.device=cuda resolves";
  const std::string e = error_of([] { runtime::resolve_device("cuda"); });
  EXPECT_CONTAINS(e, "runtime.device");
  EXPECT_CONTAINS(e, runtime::cuda_compiled() ? "no GPU is visible" : "LibTorch without CUDA");
  EXPECT_EQ(runtime::resolve_device("auto"), c10::Device(c10::kCPU));
}

TEST(CudaDevice, NcclOnTheCpuNamesTheKey) {
  GroupOptions dc;
  dc.backend = "nccl";
  const std::string e = error_of([&] {
    runtime::Distributed(runtime::DistOptions{0, 2, 0, "127.0.0.1", 1}, dc, c10::kCPU);
  });
  EXPECT_CONTAINS(e, "distributed.backend: nccl");
  // Without NCCL in LibTorch: "built without NCCL"; with it: NCCL cannot reduce CPU tensors.
  EXPECT_TRUE(e.find("without NCCL") != std::string::npos || e.find("CUDA tensors only") != std::string::npos) << e;
}

// --- on a GPU --------------------------------------------------------------------------------

TEST(Cuda, RegionLossAndGradientsEqualTheCpu) {
  YOLO2_REQUIRE_GPU();
  const Batch b = random_batch(3);
  for (ClassLoss cl : {ClassLoss::CrossEntropy, ClassLoss::Focal, ClassLoss::SigmoidFocal}) {
    at::Tensor raw_cpu = (at::randn({4, 5 * 11, 3, 3}, at::detail::createCPUGenerator(4)) * 2).requires_grad_();
    at::Tensor raw_gpu = raw_cpu.detach().to(at::kCUDA).requires_grad_();
    const auto o = loss_options(cl);
    const auto cpu = loss::region_loss(raw_cpu, b.boxes, b.labels, b.counts, 4, 2.0, o);
    const auto gpu = loss::region_loss(raw_gpu, b.boxes.cuda(), b.labels.cuda(), b.counts.cuda(), 4, 2.0, o);
    cpu.total.backward();
    gpu.total.backward();
    EXPECT_LT(relative_difference(gpu.total, cpu.total), 1e-5);
    EXPECT_LT(relative_difference(raw_gpu.grad(), raw_cpu.grad()), 1e-5);
    EXPECT_NEAR(gpu.cls, cpu.cls, 1e-5 * std::max(1.0, std::abs(cpu.cls)));
    EXPECT_EQ(gpu.count, cpu.count);
  }
}

TEST(Cuda, TrainingStepEqualsTheCpuInFp32) {
  YOLO2_REQUIRE_GPU();
  NoTf32 fp32;
  auto cpu_model = tiny_model(11), gpu_model = tiny_model(11);
  gpu_model->to(at::kCUDA);
  const Batch b = random_batch(12);
  const auto o = loss_options(ClassLoss::Focal);
  const auto cpu = loss::region_loss(cpu_model->forward(b.images), b.boxes, b.labels, b.counts, 4, 2.0, o);
  const auto gpu = loss::region_loss(gpu_model->forward(b.images.cuda()), b.boxes.cuda(), b.labels.cuda(),
                                     b.counts.cuda(), 4, 2.0, o);
  cpu.total.backward();
  gpu.total.backward();
  EXPECT_LT(relative_difference(gpu.total, cpu.total), 1e-4);
  auto gpu_params = gpu_model->named_parameters();
  for (const auto& kv : cpu_model->named_parameters())
    EXPECT_LT(relative_difference(gpu_params[kv.key()].grad(), kv.value().grad()), 1e-4) << kv.key();
}

TEST(Cuda, DecodeAndNmsEqualTheCpu) {
  YOLO2_REQUIRE_GPU();
  const std::vector<double> anchors{0.4, 0.4, 0.8, 0.8, 1.2, 1.2, 1.7, 1.7, 2.4, 2.4};
  const at::Tensor raw = at::randn({2, 5 * 11, 4, 4}, at::detail::createCPUGenerator(7)) * 2;
  const auto cpu = eval::decode_region(raw, anchors, 6), gpu = eval::decode_region(raw.cuda(), anchors, 6);
  EXPECT_LT(relative_difference(gpu.boxes, cpu.boxes), 1e-5);
  EXPECT_LT(relative_difference(gpu.objectness, cpu.objectness), 1e-5);
  EXPECT_LT(relative_difference(gpu.class_probs, cpu.class_probs), 1e-5);
  const at::Tensor boxes = ops::cxcywh_to_xyxy(cpu.boxes[0]);
  const at::Tensor scores = cpu.objectness[0] * std::get<0>(cpu.class_probs[0].max(1));
  const at::Tensor labels = std::get<1>(cpu.class_probs[0].max(1));
  const at::Tensor keep_cpu = ops::batched_nms(boxes, scores, labels, 0.45);
  const at::Tensor keep_gpu = ops::batched_nms(boxes.cuda(), scores.cuda(), labels.cuda(), 0.45);
  ASSERT_GT(keep_cpu.numel(), 0);
  EXPECT_TRUE(at::equal(keep_gpu.cpu(), keep_cpu));
  // detect_image on the GPU (candidates, mapping and NMS as tensor ops there) from the same decoded
  // numbers gives the host's detections bit for bit.
  eval::RegionDecoded on_gpu{cpu.boxes.cuda(), cpu.objectness.cuda(), cpu.class_probs.cuda()};
  const data::Affine tr{416.0 / 500, 3.3, 416.0 / 500, 17.9};  // a scale whose reciprocal is inexact
  for (int64_t b = 0; b < 2; ++b) {
    const auto host = eval::detect_image(cpu, b, tr, 128, 128, 300, 200, 5, {});
    const auto dev = eval::detect_image(on_gpu, b, tr, 128, 128, 300, 200, 5, {});
    ASSERT_EQ(dev.size(), host.size());
    for (std::size_t k = 0; k < host.size(); ++k) {
      EXPECT_EQ(dev[k].image, host[k].image);
      EXPECT_EQ(dev[k].label, host[k].label);
      EXPECT_EQ(dev[k].score, host[k].score);
      EXPECT_EQ(dev[k].box.x1, host[k].box.x1);
      EXPECT_EQ(dev[k].box.y1, host[k].box.y1);
      EXPECT_EQ(dev[k].box.x2, host[k].box.x2);
      EXPECT_EQ(dev[k].box.y2, host[k].box.y2);
    }
  }
  // Evaluation's path: both images in one detect_batch on the GPU.
  const auto both = eval::detect_batch(on_gpu, {{0, tr, 300, 200, 5}, {1, tr, 300, 200, 6}}, 128, 128, {});
  for (int64_t b = 0; b < 2; ++b) {
    const auto host = eval::detect_image(cpu, b, tr, 128, 128, 300, 200, static_cast<int>(5 + b), {});
    const auto& dev = both[static_cast<std::size_t>(b)];
    ASSERT_EQ(dev.size(), host.size());
    for (std::size_t k = 0; k < host.size(); ++k) {
      EXPECT_EQ(dev[k].image, host[k].image);
      EXPECT_EQ(dev[k].score, host[k].score);
      EXPECT_EQ(dev[k].box.x1, host[k].box.x1);
      EXPECT_EQ(dev[k].box.y2, host[k].box.y2);
    }
  }
}

// fp16's unscale on the GPU (one fused multi-tensor kernel) gives the CPU's gradient-by-gradient
// quotients exactly, and finds an inf or a NaN in any gradient.
TEST(Cuda, FusedUnscaleEqualsTheCpu) {
  YOLO2_REQUIRE_GPU();
  std::vector<at::Tensor> cpu, gpu;
  for (int64_t k = 0; k < 5; ++k) {
    at::Tensor p = at::zeros({3 + k, 4}).requires_grad_();
    p.mutable_grad() = at::randn({3 + k, 4}, at::detail::createCPUGenerator(static_cast<uint64_t>(k))) * 1024;
    at::Tensor q = p.detach().cuda().requires_grad_();
    q.mutable_grad() = p.grad().cuda();
    cpu.push_back(p);
    gpu.push_back(q);
  }
  EXPECT_TRUE(runtime::unscale_gradients(cpu, 1024.0));
  EXPECT_TRUE(runtime::unscale_gradients(gpu, 1024.0));
  for (std::size_t k = 0; k < cpu.size(); ++k) EXPECT_TRUE(at::equal(gpu[k].grad().cpu(), cpu[k].grad())) << k;
  gpu[2].grad().view(-1)[1] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(runtime::unscale_gradients(gpu, 1.0));
  gpu[2].grad().view(-1)[1] = 0.0f;
  gpu[4].grad().view(-1)[0] = std::nanf("");
  EXPECT_FALSE(runtime::unscale_gradients(gpu, 1.0));
}

TEST(Cuda, CheckpointSavedOnCudaLoadsOnTheCpu) {
  YOLO2_REQUIRE_GPU();
  TempDir dir;
  const std::string root = make_dataset(dir, 4, 96, 2);
  Config c = tiny_config(root, dir.file("run"));
  auto net = tiny_model(5);
  net->to(at::kCUDA);
  io::save_checkpoint(dir.file("cuda.ckpt"), *net, c);
  auto back = io::load_checkpoint(dir.file("cuda.ckpt"));
  EXPECT_EQ(back.model->parameters().front().device(), c10::Device(c10::kCPU));
  net->to(at::kCPU);
  EXPECT_EQ(max_abs_diff(*back.model, *net), 0.0);
}

TEST(Cuda, ShortTrainingRunOnCudaLearns) {
  YOLO2_REQUIRE_GPU();
  TempDir dir;
  const std::string root = make_dataset(dir, 8, 128, 21);
  Config c = tiny_config(root, dir.file("run"));
  c.runtime.device = "cuda";
  const train::TrainSummary s = train::run_training(c, {});
  EXPECT_EQ(s.iterations, 300);
  EXPECT_GE(s.final_map, 0.9);
  auto back = io::load_checkpoint(dir.file("run/last.ckpt"));  // evaluates on the CPU
  EXPECT_EQ(back.model->parameters().front().device(), c10::Device(c10::kCPU));
}

// runtime.precision on a GPU: tf32 turns TF32 on in cuBLAS and cuDNN and fp32 off again; fp16
// (autocast and dynamic loss scaling) and bf16 (autocast) train the tiny set to a high mAP with fp32
// weights in the checkpoint; fp16's loss scale in metrics.csv is a power of two, 1 for bf16.
TEST(Cuda, MixedPrecisionRunsLearn) {
  YOLO2_REQUIRE_GPU();
  const c10::Device gpu(c10::kCUDA, 0);
  runtime::setup_precision(runtime::Precision::Tf32, gpu);
  EXPECT_TRUE(at::globalContext().allowTF32CuBLAS());
  EXPECT_TRUE(at::globalContext().allowTF32CuDNN());
  runtime::setup_precision(runtime::Precision::Fp32, gpu);
  EXPECT_FALSE(at::globalContext().allowTF32CuBLAS());
  EXPECT_FALSE(at::globalContext().allowTF32CuDNN());
  TempDir dir;
  const std::string root = make_dataset(dir, 8, 128, 21);
  for (const auto precision : {runtime::Precision::Fp16, runtime::Precision::Bf16}) {
    const bool fp16 = precision == runtime::Precision::Fp16;
    const std::string name = fp16 ? "fp16" : "bf16";
    Config c = tiny_config(root, dir.file(name));
    c.runtime.device = "cuda";
    c.runtime.precision = precision;
    {  // the forward pass under the run's autocast really runs in the lower precision
      const runtime::PrecisionPlan plan = runtime::setup_precision(precision, gpu);
      model::YoloV2 net(model::yolov2_spec(c.model, static_cast<int>(c.data.classes.size())));
      net->to(gpu);
      const runtime::AutocastScope autocast(plan, c10::kCUDA);
      EXPECT_EQ(net->forward(at::rand({2, 3, 64, 64}, at::TensorOptions().device(gpu))).scalar_type(), plan.dtype)
          << name;
    }
    const train::TrainSummary s = train::run_training(c, {});
    EXPECT_GE(s.final_map, 0.85) << name;
    auto back = io::load_checkpoint(dir.file(name + "/last.ckpt"));
    for (const auto& t : back.model->parameters()) EXPECT_EQ(t.scalar_type(), at::kFloat) << name;
    const auto rows = csv_rows(dir.file(name + "/metrics.csv"));
    ASSERT_EQ(rows.size(), 300u) << name;
    // 300 steps, fewer than the growth interval: the scale is 2^16 halved once per skipped step.
    const double scale = rows.back()[rows.back().size() - 2], skips = rows.back().back();
    if (fp16) {
      EXPECT_EQ(scale, 65536.0 * std::pow(0.5, skips)) << skips << " skipped steps";
      EXPECT_LT(skips, 30) << "overflow at most in the first steps";
    } else {
      EXPECT_EQ(scale, 1.0);
      EXPECT_EQ(skips, 0);
    }
  }
}

// A generated VOC set of `images` 96-px images, loaded.
static std::shared_ptr<const data::Dataset> shapes_dataset(const TempDir& dir, int images, uint64_t seed) {
  data::ParseOptions po;
  po.class_names = kClasses;
  return std::make_shared<const data::Dataset>(
      data::load_dataset({{make_dataset(dir, images, 96, seed), "trainval"}}, po));
}

// pin_memory (training on CUDA): the images and a classification batch's labels are pinned, for
// their asynchronous copy; a detection batch's boxes, labels and counts stay pageable (host-only).
TEST(Cuda, LoaderPinsWhatGoesToTheGpu) {
  YOLO2_REQUIRE_GPU();
  TempDir dir;
  const auto ds = shapes_dataset(dir, 4, 3);
  data::LoaderOptions o;
  o.batch_size = 2;
  o.workers = 1;
  o.input_size = 96;
  o.train = false;
  o.pin_memory = true;
  data::Loader detection(ds, o);
  const std::optional<data::Batch> b = detection.next();
  ASSERT_TRUE(b.has_value());
  EXPECT_TRUE(b->images.is_pinned());
  EXPECT_FALSE(b->boxes.is_pinned());
  EXPECT_FALSE(b->labels.is_pinned());
  EXPECT_FALSE(b->counts.is_pinned());
  data::Loader classification(
      [](int64_t index) {
        data::Batch c;
        c.index = index;
        c.images = at::zeros({2, 3, 8, 8});
        c.labels = at::tensor(std::vector<int64_t>{0, 1}, at::kLong);
        return c;
      },
      4, o);
  const std::optional<data::Batch> cb = classification.next();
  ASSERT_TRUE(cb.has_value());
  EXPECT_TRUE(cb->images.is_pinned());
  EXPECT_TRUE(cb->labels.is_pinned());
}

// DeviceFeed on CUDA: device_side training batches (both colour modes) copied one batch ahead on a
// side stream give, after the wait, the network input that the same batches give on the CPU (the
// HSV ops on the GPU against the CPU's; darknet's bit for bit), every batch, in order.
TEST(Cuda, DeviceFeedCopiesOnASideStreamAndEqualsTheCpu) {
  YOLO2_REQUIRE_GPU();
  TempDir dir;
  const auto ds = shapes_dataset(dir, 8, 5);
  for (const HsvMode mode : {HsvMode::Darknet, HsvMode::AlexeyAB}) {
    data::LoaderOptions o;
    o.batch_size = 4;
    o.workers = 2;
    o.input_size = 96;
    o.num_batches = 6;
    o.device_side = true;
    o.augment.hsv = mode;
    o.augment.hue = 0.3, o.augment.saturation = 3, o.augment.exposure = 3;
    data::Loader host(ds, o);
    o.pin_memory = true;
    data::DeviceFeed feed(std::make_unique<data::Loader>(ds, o), c10::Device("cuda"));
    for (int k = 0; k < 6; ++k) {
      const std::optional<data::Batch> h = host.next();
      const std::optional<data::Batch> d = feed.next();
      ASSERT_TRUE(h && d) << k;
      EXPECT_EQ(d->index, h->index);
      EXPECT_TRUE(d->images.is_cuda());
      const at::Tensor x = data::network_input(*d, c10::Device("cuda"), at::MemoryFormat::ChannelsLast).cpu();
      const at::Tensor ref = data::network_input(*h, at::kCPU, at::MemoryFormat::Contiguous);
      if (mode == HsvMode::Darknet)
        EXPECT_TRUE(at::equal(x, ref)) << "batch " << k;
      else
        EXPECT_LE((x - ref).abs().max().item<float>(), 1.0f / 255.0f + 1e-6f) << "batch " << k;
    }
    EXPECT_FALSE(feed.next().has_value());
  }
}

// yolo2 bench on a GPU (runtime.device=cuda) in each precision: the GPU's figures (peak GPU memory,
// forward at batch 64, decode + NMS there), none of the CPU-only ones, and the device and precision
// in the report.
TEST(Cuda, BenchMeasuresOnTheGpu) {
  YOLO2_REQUIRE_GPU();
  const NoTf32 restore;  // the TF32 switches as they were, whatever the precisions set
  TempDir dir;
  const std::string root = make_dataset(dir, 8, 96, 4);
  for (const auto precision :
       {runtime::Precision::Fp32, runtime::Precision::Tf32, runtime::Precision::Bf16, runtime::Precision::Fp16}) {
    Config c = tiny_config(root, dir.file("run"));
    c.runtime.device = "cuda";
    c.runtime.precision = precision;
    c.data.input_size = 96;
    bench::BenchOptions o;
    o.repeats = 3;
    o.loader = false;
    o.opencv = false;
    bench::BenchReport r;
    try {
      r = bench::run_bench(c, o);
    } catch (const Error& e) {  // bf16 below compute capability 8.0: the error names the key
      if (precision != runtime::Precision::Bf16) throw;
      std::cout << "bf16 not measured: " << e.what() << "\n";
      continue;
    }
    EXPECT_EQ(r.device, "cuda:0");
    for (const char* id : {"reference_conv_forward", "train_iteration", "train_phases", "train_peak_gpu_memory",
                           "forward_batch1", "forward_batch64", "decode_nms"}) {
      ASSERT_NE(r.find(id), nullptr) << id << " " << r.precision;
      EXPECT_GT(r.find(id)->value, 0) << id << " " << r.precision;
    }
    EXPECT_EQ(r.find("forward_batch8"), nullptr);
    EXPECT_EQ(r.find("opencv_forward_batch1"), nullptr);
  }
}
