// runtime.precision on the CPU: settings a device cannot run are refused naming the key, fp32
// turns TF32 off, an autocast scope runs the network in bf16 and restores the previous state,
// fp16's loss scaling is exact (scaled then unscaled gradients equal the plain ones bit for bit),
// skips a step whose gradients overflow and follows GradScaler's growth rule, a bf16 run on the CPU
// keeps fp32 weights, and a training log written without the loss-scale columns keeps its rows on
// resume. The fp16 / bf16 / tf32 runs on a GPU are in test_cuda.cpp.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "test_util.hpp"
#include "train_fixtures.hpp"
#include "yolo2/io/checkpoint.hpp"
#include "yolo2/loss/region_loss.hpp"
#include "yolo2/runtime/precision.hpp"
#include "yolo2/train/trainer.hpp"

using namespace yolo2;
using namespace yolo2::testing;

namespace {

model::YoloV2 small_model(uint64_t seed) {
  ModelOptions m;
  m.width = 0.25;
  m.anchors = {0.4, 0.4, 0.8, 0.8, 1.2, 1.2, 1.7, 1.7, 2.4, 2.4};
  torch::manual_seed(seed);
  return model::YoloV2(model::yolov2_spec(m, 6));
}

double relative_difference(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.to(at::kDouble), y = b.to(at::kDouble);
  return ((x - y).abs().max() / y.abs().max().clamp_min(1e-12)).item<double>();
}

}  // namespace

TEST(Precision, RefusedWhereTheDeviceCannotRunIt) {
  const c10::Device cpu(c10::kCPU);
  const std::string tf32 = error_of([&] { runtime::setup_precision(runtime::Precision::Tf32, cpu); });
  EXPECT_CONTAINS(tf32, "runtime.precision is tf32 but runtime.device is cpu");
  const std::string fp16 = error_of([&] { runtime::setup_precision(runtime::Precision::Fp16, cpu); });
  EXPECT_CONTAINS(fp16, "runtime.precision is fp16 but runtime.device is cpu");
  EXPECT_CONTAINS(fp16, "bf16");
  // fp32 means no TF32 anywhere (LibTorch's default leaves it on in cuDNN).
  at::globalContext().setAllowTF32CuDNN(true);
  const auto fp32 = runtime::setup_precision(runtime::Precision::Fp32, cpu);
  EXPECT_FALSE(fp32.autocast);
  EXPECT_FALSE(at::globalContext().allowTF32CuDNN());
  EXPECT_FALSE(at::globalContext().allowTF32CuBLAS());
  const auto bf16 = runtime::setup_precision(runtime::Precision::Bf16, cpu);
  EXPECT_TRUE(bf16.autocast);
  EXPECT_EQ(bf16.dtype, at::kBFloat16);
  EXPECT_FALSE(bf16.loss_scaling);
  // The config key takes the four words and names the others.
  EXPECT_EQ(parse_config("runtime: {precision: bf16}", "t").runtime.precision, runtime::Precision::Bf16);
  EXPECT_CONTAINS(error_of([] { parse_config("runtime: {precision: half}", "t"); }), "runtime.precision");
}

TEST(Precision, AutocastScopeRunsTheNetworkInBf16AndRestores) {
  auto net = small_model(3);
  net->eval();  // running statistics: the same normalisation in both passes
  const at::Tensor x = at::rand({2, 3, 64, 64}, at::detail::createCPUGenerator(4));
  torch::NoGradGuard no_grad;
  const at::Tensor fp32 = net->forward(x);
  ASSERT_EQ(fp32.scalar_type(), at::kFloat);
  runtime::PrecisionPlan plan = runtime::setup_precision(runtime::Precision::Bf16, c10::Device(c10::kCPU));
  at::Tensor bf16;
  {
    runtime::AutocastScope scope(plan, c10::kCPU);
    bf16 = net->forward(x);
  }
  EXPECT_EQ(bf16.scalar_type(), at::kBFloat16) << "the convolutions ran under autocast";
  // bf16 keeps 8 bits of mantissa: ~4e-3 relative per rounding, over 23 layers of a random network
  // (6e-2 measured); a wrong result would be off by its own size.
  EXPECT_LT(relative_difference(bf16.to(at::kFloat), fp32), 0.15);
  EXPECT_GT(relative_difference(bf16.to(at::kFloat), fp32), 0.0);
  // Out of the scope autocast is off again: fp32 and the same numbers as before.
  const at::Tensor again = net->forward(x);
  EXPECT_EQ(again.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(again, fp32));
  // An fp32 plan is no scope at all.
  runtime::AutocastScope none(runtime::PrecisionPlan{}, c10::kCPU);
  EXPECT_EQ(net->forward(x).scalar_type(), at::kFloat);
}

// Scaling the loss by 2^16 and dividing the gradients by it again gives the plain gradients bit for
// bit; one inf in one gradient makes the step a skip; the scale halves on a skip and doubles after
// 2,000 finite steps in a row (torch.amp.GradScaler's defaults).
TEST(Precision, LossScalingIsExactAndSkipsOverflow) {
  const at::Tensor x = at::rand({2, 3, 64, 64}, at::detail::createCPUGenerator(5));
  auto plain = small_model(6), scaled = small_model(6);
  plain->forward(x).square().mean().backward();
  runtime::LossScale ls;
  (scaled->forward(x).square().mean() * ls.scale).backward();
  std::vector<at::Tensor> params = scaled->parameters();
  EXPECT_TRUE(runtime::unscale_gradients(params, ls.scale));
  auto pp = plain->named_parameters();
  for (const auto& kv : scaled->named_parameters()) {
    ASSERT_TRUE(kv.value().grad().defined()) << kv.key();
    EXPECT_TRUE(at::equal(kv.value().grad(), pp[kv.key()].grad())) << kv.key();
  }
  params[3].grad().view(-1)[0] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(runtime::unscale_gradients(params, 1.0));
  params[3].grad().view(-1)[0] = std::nanf("");
  EXPECT_FALSE(runtime::unscale_gradients(params, 1.0));

  runtime::LossScale s;
  runtime::update_loss_scale(s, false);
  EXPECT_EQ(s.scale, 32768.0);
  EXPECT_EQ(s.skipped, 1);
  for (int i = 0; i < 1999; ++i) runtime::update_loss_scale(s, true);
  EXPECT_EQ(s.scale, 32768.0);
  runtime::update_loss_scale(s, true);
  EXPECT_EQ(s.scale, 65536.0);
  EXPECT_EQ(s.good_steps, 0);
  EXPECT_EQ(s.skipped, 1);
}

// A bf16 run on the CPU trains with fp32 master weights (the checkpoint holds float tensors) and a
// first loss close to the fp32 run's; metrics.csv has the loss-scale columns (1 and 0 without fp16).
TEST(Precision, Bf16TrainingOnTheCpuKeepsFp32Weights) {
  TempDir dir;
  const std::string root = make_dataset(dir, 4, 64, 8);
  auto run = [&](const std::string& name, runtime::Precision precision) {
    Config c = tiny_config(root, dir.file(name));
    c.data.input_size = 64;
    c.train.batch = 4;
    c.train.max_batches = 3;
    c.train.log_every = 1;
    c.runtime.precision = precision;
    train::TrainOptions o;
    o.evaluate = false;
    train::run_training(c, o);
    return csv_rows(dir.file(name + "/metrics.csv"));
  };
  const auto fp32 = run("fp32", runtime::Precision::Fp32), bf16 = run("bf16", runtime::Precision::Bf16);
  ASSERT_EQ(bf16.size(), 3u);
  const std::string header = read_text(dir.file("bf16/metrics.csv")).substr(0, 400);
  EXPECT_CONTAINS(header, "count,images_per_s,loss_scale,overflow_skips\n");
  EXPECT_EQ(bf16[0][bf16[0].size() - 2], 1.0);
  EXPECT_EQ(bf16[0].back(), 0.0);
  EXPECT_NEAR(bf16[0][6], fp32[0][6], 0.05 * fp32[0][6]) << "the first loss, bf16 against fp32";
  EXPECT_NE(bf16[0][6], fp32[0][6]);
  auto ck = io::load_checkpoint(dir.file("bf16/last.ckpt"));
  for (const auto& p : ck.model->parameters()) EXPECT_EQ(p.scalar_type(), at::kFloat);
  EXPECT_EQ(ck.config.runtime.precision, runtime::Precision::Bf16);
}

// metrics.csv written by an older yolo2 (no loss_scale / overflow_skips columns) keeps its rows
// when the run is resumed: columns are matched by name, the missing cells read NaN.
TEST(Precision, ResumedLogWithoutTheNewColumnsKeepsItsRows) {
  TempDir dir;
  const std::string root = make_dataset(dir, 4, 64, 9);
  Config c = tiny_config(root, dir.file("run"));
  c.data.input_size = 64;
  c.train.batch = 4;
  c.train.max_batches = 5;
  train::TrainOptions first;
  first.evaluate = false;
  first.stop_after = 3;
  train::run_training(c, first);
  // Drop the last two columns, as an older yolo2 wrote the file.
  std::istringstream in(read_text(dir.file("run/metrics.csv")));
  std::string out, line;
  while (std::getline(in, line)) {
    for (int k = 0; k < 2; ++k) line = line.substr(0, line.rfind(','));
    out += line + "\n";
  }
  write_text(dir.file("run/metrics.csv"), out);
  train::TrainOptions rest;
  rest.evaluate = false;
  rest.resume = dir.file("run/last.ckpt");
  train::run_training(Config{}, rest);
  const auto rows = csv_rows(dir.file("run/metrics.csv"));
  ASSERT_EQ(rows.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(rows[static_cast<std::size_t>(i)][0], i + 1);
    EXPECT_EQ(std::isnan(rows[static_cast<std::size_t>(i)][rows[0].size() - 2]), i < 3) << "row " << i;
  }
}
