// The trainer end to end on tiny generated datasets: it learns (overfits a few images to a high
// mAP with CE and focal), a stopped-and-resumed run equals an uninterrupted one, the schedules the
// optimizer saw match their definitions, and Ctrl-C saves a resumable checkpoint.
#include <ATen/ATen.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "test_util.hpp"
#include "train_fixtures.hpp"
#include "yolo2/config.hpp"
#include "yolo2/data/synth.hpp"
#include "yolo2/error.hpp"
#include "yolo2/io/checkpoint.hpp"
#include "yolo2/train/optimizer.hpp"
#include "yolo2/train/schedule.hpp"
#include "yolo2/train/trainer.hpp"
#include "yolo2/util/signals.hpp"

using namespace yolo2;
using namespace yolo2::testing;
namespace fs = std::filesystem;

class Overfit : public ::testing::TestWithParam<ClassLoss> {};

TEST_P(Overfit, FewImagesReachHighMap) {
  yolo2::testing::TempDir dir;
  const std::string root = make_dataset(dir, 8, 96, 21);
  Config c = tiny_config(root, dir.file("run"));
  c.data.input_size = 96;
  c.train.max_batches = 150;
  c.train.steps = {100};
  c.loss.classification = GetParam();
  const train::TrainSummary s = train::run_training(c, {});
  std::cout << "overfit (" << (GetParam() == ClassLoss::CrossEntropy ? "ce" : "focal") << "): mAP " << s.final_map
            << " after " << s.iterations << " iterations, " << s.seconds << " s\n";
  EXPECT_EQ(s.iterations, 150);
  EXPECT_GE(s.final_map, 0.9);
  EXPECT_TRUE(fs::exists(dir.file("run/best.ckpt")));
  EXPECT_TRUE(fs::exists(dir.file("run/loss.png")));
  EXPECT_TRUE(fs::exists(dir.file("run/eval.csv")));
}

INSTANTIATE_TEST_SUITE_P(ClassTerms, Overfit, ::testing::Values(ClassLoss::CrossEntropy, ClassLoss::Focal));

TEST(Resume, StoppedAndResumedRunEqualsUninterruptedRun) {
  yolo2::testing::TempDir dir;
  const std::string root = make_dataset(dir, 12, 96, 3);
  auto config = [&](const std::string& run) {
    Config c = tiny_config(root, dir.file(run));
    c.train.max_batches = 8;
    c.train.burn_in = 2;
    c.train.steps = {5};
    c.train.checkpoint_every = 2;  // saves (background writes, metrics.csv appended) between the others
    c.train.batch = 8;
    c.train.subdivisions = 2;  // gradient accumulation is part of the state that must resume
    c.data.workers = 2;
    c.data.multiscale_sizes = {96, 128, 160};
    c.data.multiscale_every = 2;
    c.data.multiscale_final = 0;
    c.data.augment = AugmentOptions{};  // full augmentation
    c.loss.warmup_images = 40;          // the warm-up ends inside the run
    c.loss.classification = ClassLoss::Focal;
    c.loss.focal.gamma_schedule.type = GammaScheduleType::Linear;
    return c;
  };
  train::TrainOptions no_eval;
  no_eval.evaluate = false;
  train::run_training(config("straight"), no_eval);

  // The same run stopped after iteration 3 (as Ctrl-C would stop it), then resumed.
  train::TrainOptions stop = no_eval;
  stop.stop_after = 3;
  const train::TrainSummary stopped = train::run_training(config("stopped"), stop);
  EXPECT_TRUE(stopped.interrupted);
  EXPECT_EQ(stopped.iterations, 3);
  train::TrainOptions resume = no_eval;
  resume.resume = dir.file("stopped/last.ckpt");
  const train::TrainSummary s = train::run_training(Config{}, resume);
  EXPECT_EQ(s.iterations, 8);

  auto a = io::load_checkpoint(dir.file("straight/last.ckpt"));
  auto b = io::load_checkpoint(dir.file("stopped/last.ckpt"));
  EXPECT_EQ(a.state->iteration, 8);
  EXPECT_EQ(b.state->iteration, 8);
  EXPECT_EQ(a.state->images_seen, b.state->images_seen);
  const double diff = max_abs_diff(*a.model, *b.model);
  std::cout << "resume: max abs weight difference " << diff << "\n";
  EXPECT_LE(diff, 1e-6);
  // The logs of the resumed run continue without duplicates, row for row the uninterrupted run's
  // (all but the measured speed), although each was appended to at every save.
  const auto straight_rows = csv_rows(dir.file("straight/metrics.csv"));
  const auto resumed_rows = csv_rows(dir.file("stopped/metrics.csv"));
  ASSERT_EQ(resumed_rows.size(), 8u);
  ASSERT_EQ(straight_rows.size(), 8u);
  const std::string header = read_text(dir.file("straight/metrics.csv")).substr(0, 400);
  const std::string first_line = header.substr(0, header.find('\n'));
  std::vector<std::string> names;
  std::stringstream hs(first_line);
  for (std::string n; std::getline(hs, n, ',');) names.push_back(n);
  for (std::size_t r = 0; r < 8; ++r) {
    EXPECT_EQ(resumed_rows[r][0], static_cast<double>(r + 1));
    for (std::size_t k = 0; k < names.size(); ++k)
      if (names[k] != "images_per_s") {
        EXPECT_EQ(resumed_rows[r][k], straight_rows[r][k]) << names[k] << " row " << r;
      }
  }
}

// runtime.channels_last changes the memory layout only: with frozen batch norm (live BN at
// initialisation amplifies rounding, see test_distributed.cpp) 4 steps in NHWC equal 4 in NCHW.
TEST(Training, ChannelsLastTrainsLikeNchw) {
  yolo2::testing::TempDir dir;
  const std::string root = make_dataset(dir, 8, 96, 4);
  auto run = [&](const std::string& name, bool channels_last) {
    Config c = tiny_config(root, dir.file(name));
    c.train.max_batches = 4;
    c.train.burn_in = 0;
    c.train.lr = 0.005;
    c.train.freeze_bn = true;
    c.data.input_size = 96;
    c.runtime.channels_last = channels_last;
    train::TrainOptions o;
    o.evaluate = false;
    train::run_training(c, o);
    return io::load_checkpoint(dir.file(name + "/last.ckpt"));
  };
  auto nchw = run("nchw", false), nhwc = run("nhwc", true);
  // The run did train in NHWC (the checkpoint keeps its parameters' layout).
  const at::Tensor w = nhwc.model->convs()[1]->weight;
  EXPECT_TRUE(w.is_contiguous(at::MemoryFormat::ChannelsLast) && !w.is_contiguous());
  EXPECT_TRUE(nchw.model->convs()[1]->weight.is_contiguous());
  const double diff = max_abs_diff(*nchw.model, *nhwc.model);
  EXPECT_LE(diff, 1e-5) << "max abs weight difference " << diff;
  torch::manual_seed(5);
  model::YoloV2 fresh(model::yolov2_spec(nchw.config.model, 6));
  EXPECT_GT(max_abs_diff(*fresh, *nhwc.model), 1e-3);  // the weights did move
}

TEST(Resume, StopRequestSavesAResumableCheckpoint) {
  yolo2::testing::TempDir dir;
  const std::string root = make_dataset(dir, 8, 96, 4);
  Config c = tiny_config(root, dir.file("run"));
  c.train.max_batches = 50;
  train::TrainOptions o;
  o.evaluate = false;
  util::request_stop();  // as if Ctrl-C arrived during the first iteration
  const train::TrainSummary s = train::run_training(c, o);
  util::clear_stop();
  EXPECT_TRUE(s.interrupted);
  EXPECT_EQ(s.iterations, 1);
  const auto ck = io::load_checkpoint(dir.file("run/last.ckpt"));
  ASSERT_TRUE(ck.state.has_value());
  EXPECT_EQ(ck.state->iteration, 1);
  EXPECT_TRUE(ck.optimizer.has_value());
  // Starting again in the same folder without --resume would lose it: refused.
  EXPECT_THROW(train::run_training(c, o), Error);
}

TEST(Schedules, OptimizerSawTheDefinedLearningRateAndGamma) {
  yolo2::testing::TempDir dir;
  const std::string root = make_dataset(dir, 8, 96, 6);
  Config c = tiny_config(root, dir.file("run"));
  c.train.max_batches = 12;
  c.train.burn_in = 4;
  c.train.steps = {6, 9};
  c.train.scales = {0.5, 0.1};
  c.loss.classification = ClassLoss::Focal;
  c.loss.focal.gamma_schedule.type = GammaScheduleType::Step;
  c.loss.focal.gamma_schedule.milestones = {0.25, 0.5};
  c.loss.focal.gamma_schedule.values = {0.0, 1.0, 2.0};
  train::TrainOptions o;
  o.evaluate = false;
  train::run_training(c, o);
  int checked = 0;
  for (const auto& v : csv_rows(dir.file("run/metrics.csv"))) {
    const auto it = static_cast<int64_t>(v[0]);  // iterations done after this step
    // The step taken as iteration `it` is darknet's update number `it` (counted from 1) for the
    // learning rate; gamma is defined on the steps done before it (it - 1).
    EXPECT_NEAR(v[3], train::learning_rate(c.train, it, 12), 1e-12) << "iteration " << it;
    // By hand, darknet's numbers: update 1 is the first of the burn-in (0.01 * (1/4)^4), the 6th
    // and 9th updates already take the step's rate.
    if (it == 1) {
      EXPECT_NEAR(v[3], 0.01 / 256, 1e-15);
    }
    if (it == 5) {
      EXPECT_NEAR(v[3], 0.01, 1e-15);
    }
    if (it == 6) {
      EXPECT_NEAR(v[3], 0.005, 1e-15);
    }
    if (it == 9) {
      EXPECT_NEAR(v[3], 0.0005, 1e-15);
    }
    EXPECT_NEAR(v[4], train::focal_gamma(c.loss.focal, static_cast<double>(it - 1) / 12), 1e-12) << "iteration " << it;
    ++checked;
  }
  EXPECT_EQ(checked, 12);
  // Chosen points, by hand: burn-in (2/4)^4, then steps.
  EXPECT_NEAR(train::learning_rate(c.train, 2, 12), 0.01 * 0.0625, 1e-15);
  EXPECT_NEAR(train::learning_rate(c.train, 6, 12), 0.005, 1e-15);
  EXPECT_NEAR(train::learning_rate(c.train, 9, 12), 0.0005, 1e-15);
  EXPECT_EQ(train::focal_gamma(c.loss.focal, 3.0 / 12), 1.0);
}

#ifdef YOLO2_EXE

// Ctrl-C (SIGINT) through the real program: it finishes the iteration, saves, says how to resume and
// exits 130 so that `train && eval` and schedulers do not take it for a finished run.
TEST(Checkpoint, SigintSavesAndExits130) {
  yolo2::testing::TempDir dir;
  const std::string root = make_dataset(dir, 8, 96, 8);
  Config c = tiny_config(root, dir.file("run"));
  c.train.max_batches = 100000;
  c.train.checkpoint_every = 100000;
  yolo2::testing::write_text(dir.file("c.yaml"), to_yaml(c));
  const pid_t pid = spawn_yolo2({"train", "--config", dir.file("c.yaml"), "--no-eval"}, dir.file("log"));
  ASSERT_GT(pid, 0);
  wait_for_file(dir.file("run/config.yaml"));  // written just before training starts
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string out = yolo2::testing::read_text(dir.file("log"));
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 130) << out;  // interrupted, as a shell reports SIGINT (issue 15 item 7)
  EXPECT_NE(out.find("yolo2 train --resume"), std::string::npos) << out;
  const auto ck = io::load_checkpoint(dir.file("run/last.ckpt"));
  ASSERT_TRUE(ck.state.has_value());
  EXPECT_GE(ck.state->iteration, 1);
}
#endif

// A stop decided at an evaluation iteration (the stop hook runs before the evaluation) leaves that
// iteration unevaluated; the resumed run evaluates it first, so eval.csv ends as an uninterrupted
// run's (the same rows, the same scores).
TEST(Training, StopAtAnEvaluationIterationEvaluatesOnResume) {
  yolo2::testing::TempDir dir;
  const std::string root = make_dataset(dir, 8, 96, 7);
  auto config = [&](const std::string& run) {
    Config c = tiny_config(root, dir.file(run));
    c.data.input_size = 96;
    c.train.max_batches = 4;
    c.train.burn_in = 0;
    c.train.checkpoint_every = 100;
    c.eval.every = 2;
    return c;
  };
  train::TrainOptions o;
  train::run_training(config("whole"), o);
  train::TrainOptions stop = o;
  stop.stop_after = 2;
  EXPECT_TRUE(train::run_training(config("split"), stop).interrupted);
  const auto before = fs::exists(dir.file("split/eval.csv")) ? csv_rows(dir.file("split/eval.csv"))
                                                             : std::vector<std::vector<double>>{};
  EXPECT_TRUE(before.empty());  // the stop came first: iteration 2 was not evaluated
  train::TrainOptions resume = o;
  resume.resume = dir.file("split/last.ckpt");
  EXPECT_EQ(train::run_training(Config{}, resume).iterations, 4);
  const auto a = csv_rows(dir.file("whole/eval.csv")), b = csv_rows(dir.file("split/eval.csv"));
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), a.size());
  for (std::size_t r = 0; r < a.size(); ++r) {
    ASSERT_EQ(a[r].size(), b[r].size());
    for (std::size_t k = 0; k < a[r].size(); ++k)  // NaN: a class without objects, in both
      EXPECT_TRUE(a[r][k] == b[r][k] || (std::isnan(a[r][k]) && std::isnan(b[r][k]))) << "row " << r << " col " << k;
  }
}

// The multi-tensor SGD update equals torch::optim::SGD's per-parameter one bit for bit on the CPU,
// over several steps (the momentum buffers' first step and later ones), with and without weight
// decay, dampening and Nesterov, with a parameter that has no gradient; its state saves and loads
// into torch's SGD and the two go on equal.
TEST(Optimizer, ForeachSgdEqualsTorchSgd) {
  using torch::optim::SGDOptions;
  for (const bool nesterov : {false, true}) {
    torch::manual_seed(3);
    std::vector<at::Tensor> a, b;
    for (const auto& shape : std::vector<std::vector<int64_t>>{{8, 3, 3, 3}, {8}, {5, 7}, {4}}) {
      a.push_back(torch::randn(shape).set_requires_grad(true));
      b.push_back(a.back().detach().clone().set_requires_grad(true));
    }
    auto options = [&](double decay) {
      return std::make_unique<SGDOptions>(
          SGDOptions(0.1).momentum(0.9).weight_decay(decay).dampening(nesterov ? 0.0 : 0.25).nesterov(nesterov));
    };
    auto groups = [&](const std::vector<at::Tensor>& p) {
      std::vector<torch::optim::OptimizerParamGroup> g;
      g.emplace_back(std::vector<at::Tensor>{p[0], p[1]}, options(5e-4));
      g.emplace_back(std::vector<at::Tensor>{p[2], p[3]}, options(0));
      return g;
    };
    train::ForeachSGD fa(groups(a), SGDOptions(0.1));
    torch::optim::SGD fb(groups(b), SGDOptions(0.1));
    auto step = [&](int k, torch::optim::Optimizer& oa, torch::optim::Optimizer& ob) {
      const at::Tensor g = torch::randn({8, 3, 3, 3}) * (k + 1);
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (i == 3 && k < 2) continue;  // no gradient yet: no update, no momentum buffer
        const at::Tensor grad = g.flatten().narrow(0, 0, a[i].numel()).view(a[i].sizes()) + static_cast<double>(i);
        a[i].mutable_grad() = grad.clone();
        b[i].mutable_grad() = grad.clone();
      }
      oa.step();
      ob.step();
      for (std::size_t i = 0; i < a.size(); ++i) {
        ASSERT_TRUE(at::equal(a[i], b[i])) << "nesterov " << nesterov << " step " << k << " tensor " << i;
        a[i].mutable_grad() = at::Tensor();
        b[i].mutable_grad() = at::Tensor();
      }
    };
    for (int k = 0; k < 4; ++k) step(k, fa, fb);
    EXPECT_FALSE(at::equal(a[0], b[0].detach().clone().zero_()));  // the weights moved
    // ForeachSGD's state into torch's SGD (a fresh one on a's parameters), and on.
    torch::serialize::OutputArchive out;
    fa.save(out);
    std::ostringstream bytes;
    out.save_to(bytes);
    torch::optim::SGD fc(groups(a), SGDOptions(0.1));
    torch::serialize::InputArchive in;
    std::istringstream read(bytes.str());
    in.load_from(read);
    fc.load(in);
    for (int k = 4; k < 6; ++k) step(k, fc, fb);
  }
}
