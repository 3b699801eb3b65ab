// The training engine through a fake task (no data, no region loss): the hooks' order, the
// accumulation over subdivisions, stop and resume, non-finite losses and deferred scalars. A step
// takes milliseconds, so these run in seconds; the end-to-end runs of the real tasks are in
// test_train.cpp and test_pretrain.cpp.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <set>

#include "test_util.hpp"
#include "train_fixtures.hpp"
#include "yolo2/error.hpp"
#include "yolo2/io/checkpoint.hpp"
#include "yolo2/train/optimizer.hpp"
#include "yolo2/train/run.hpp"
#include "yolo2/train/schedule.hpp"
#include "yolo2/train/task.hpp"
#include "yolo2/train/trainer.hpp"

namespace fs = std::filesystem;
using namespace yolo2;
using namespace yolo2::testing;

namespace {

// A tiny detector (width 1/16, 32 px: one output cell) on inputs that are a function of the
// micro-batch's place in the stream (so that a skipped micro-batch keeps a resumed stream aligned).
Config fake_config(const std::string& run_dir) {
  return parse_config(
      "data:\n  classes: [a, b]\n  train: []\n  test: []\n  input_size: 32\n"
      "model:\n  width: 0.0625\n  bn_momentum: 0.1\n"
      "train:\n  batch: 4\n  subdivisions: 2\n  lr: 0.01\n  burn_in: 3\n  policy: steps\n"
      "  steps: [8]\n  scales: [0.1]\n  max_batches: 12\n  checkpoint_every: 4\n  log_every: 3\n"
      "  output: " +
          run_dir + "\neval:\n  every: 0\nruntime:\n  device: cpu\n  threads: 1\n  seed: 7\n",
      "fake");
}

// What the fake task's micro-batches gave, as the host sees them (for independent sums).
struct MicroLog {
  int64_t iteration = 0;
  std::vector<double> values;  // fit, bias, out_mean, share
  int64_t count = 0;
};

// Scalars: fit (a term: mean squared output, NaN from `nan_from` on, which makes the gradient NaN
// too), bias (a constant term), out_mean (a Mean) and share (a CountMean over the micro-batch's
// images: the fraction of positive outputs, over `count` = images). One setting: the fraction of
// training done. Its evaluation scores 1 / (1 + mean |output|) on a fixed input.
class FakeTask : public train::Task {
 public:
  explicit FakeTask(int64_t nan_from = -1, std::vector<MicroLog>* log = nullptr) : nan_from_(nan_from), log_(log) {}
  const train::TaskInfo& info() const override {
    static const train::TaskInfo i{"fake", "a test task", Head::Region, "score", "eval.csv", ""};
    return i;
  }
  void load(Config& c, bool evaluate) override {
    train_ = c.train;
    evaluate_ = evaluate;
  }
  int64_t train_images() const override { return 64; }
  int64_t max_batches() const override { return train_.max_batches; }
  double learning_rate(int64_t update) const override {
    return train::learning_rate(train_, update, train_.max_batches);
  }
  void prepare(const train::TrainerParts& p) override {
    mini_ = p.config.train.batch / p.config.train.subdivisions;
    sub_ = p.config.train.subdivisions;
  }
  std::unique_ptr<train::Evaluation> evaluation() override;
  const train::ScalarSpecs& scalars() const override {
    using R = train::ScalarKind;
    static const train::ScalarSpecs s{
        {"fit", R::Term}, {"bias", R::Term}, {"out_mean", R::Mean}, {"share", R::CountMean}};
    return s;
  }
  const std::vector<std::string>& settings() const override {
    static const std::vector<std::string> s{"progress"};
    return s;
  }
  std::vector<double> begin_step(const train::Trainer& t) override {
    return {static_cast<double>(t.parts().state.iteration) / static_cast<double>(max_batches())};
  }
  void open(const train::Trainer& t) override { next_ = t.parts().state.iteration * sub_; }
  train::MicroResult micro_step(train::Trainer& t, int) override {
    const int64_t k = next_++;
    const at::Tensor x = input(k, mini_);
    const at::Tensor out = t.parts().net->forward(x).flatten(1);
    const int64_t iteration = t.parts().state.iteration + 1;
    const bool bad = nan_from_ >= 0 && iteration >= nan_from_;
    const at::Tensor fit = out.square().mean() * (bad ? std::numeric_limits<double>::quiet_NaN() : 1.0);
    const at::Tensor bias = at::full({}, 0.25);
    const at::Tensor d = out.detach();
    const at::Tensor share = (d > 0).to(at::kFloat).mean();
    train::MicroResult r;
    r.total = fit + bias;
    r.values = loss::named_scalars(scalars(),
                                   {{"fit", fit.detach()}, {"bias", bias}, {"out_mean", d.mean()}, {"share", share}});
    r.count = mini_;
    r.size = 32;
    if (log_) {
      const at::Tensor h = r.values.values.contiguous();
      log_->push_back({iteration, {h.data_ptr<double>(), h.data_ptr<double>() + h.numel()}, r.count});
    }
    return r;
  }
  void skip_micro_batch() override { ++next_; }

  static at::Tensor input(int64_t k, int n) {
    return at::arange(n * 3 * 32 * 32, at::kFloat)
        .mul(0.0137 * static_cast<double>(k + 1))
        .sin()
        .abs()
        .view({n, 3, 32, 32});
  }

 private:
  int64_t nan_from_;
  std::vector<MicroLog>* log_;
  TrainConfig train_;
  bool evaluate_ = true;
  int mini_ = 1, sub_ = 1;
  int64_t next_ = 0;
};

class FakeEvaluation : public train::Evaluation {
 public:
  std::vector<std::string> columns(const Config&) const override { return {"score"}; }
  std::vector<std::string> plotted() const override { return {"score"}; }
  std::string plot_title(const Config&) const override { return "fake score"; }
  std::string plot_file() const override { return "score.png"; }
  std::optional<std::vector<double>> run(train::Trainer& t) override {
    at::NoGradGuard g;
    const double m = t.parts().net->forward(FakeTask::input(1000, 2)).abs().mean().item<double>();
    return std::vector<double>{1.0 / (1.0 + m)};
  }
};

std::unique_ptr<train::Evaluation> FakeTask::evaluation() {
  return evaluate_ ? std::make_unique<FakeEvaluation>() : nullptr;
}

// A Trainer built by hand (as the bench does): the fake task, the tiny network, SGD, a run folder.
train::TrainerParts fake_parts(const Config& config, std::unique_ptr<train::Task> task, bool deferred) {
  train::TrainerParts p;
  p.config = config;
  fs::create_directories(config.train.output);
  p.folder.dir = config.train.output;
  torch::manual_seed(config.runtime.seed);
  p.net = model::YoloV2(model::network_spec(config.model, static_cast<int>(config.data.classes.size())));
  train::set_train_mode(*p.net, config.train.freeze_bn);
  p.optimizer = train::make_optimizer(*p.net, config.train);
  p.deferred_scalars = deferred;
  p.task = std::move(task);
  p.task->load(p.config, false);
  p.task->prepare(p);
  return p;
}

// Records the hook calls: "<name>:<event>:<iteration>".
class RecordingHook : public train::Hook {
 public:
  RecordingHook(std::string name, std::vector<std::string>& calls) : name_(std::move(name)), calls_(calls) {}
  void before_train(train::Trainer& t) override { note("before_train", t.state().iteration); }
  void after_step(train::Trainer& t) override {
    note("after_step", t.state().iteration);
    if (t.state().iteration == 2 && name_ == "a") t.save_last();
  }
  void after_scalars(train::Trainer&, const train::StepRecord& s) override {
    note("after_scalars", s.iteration);
    records.push_back(s);
  }
  void before_save(train::Trainer& t) override { note("before_save", t.state().iteration); }
  void after_train(train::Trainer& t) override { note("after_train", t.state().iteration); }
  std::vector<train::StepRecord> records;

 private:
  void note(const char* event, int64_t it) { calls_.push_back(name_ + ":" + event + ":" + std::to_string(it)); }
  std::string name_;
  std::vector<std::string>& calls_;
};

std::vector<std::string> expected_calls(bool deferred) {
  std::vector<std::string> e;
  const auto both = [&](const std::string& event, int64_t it) {
    for (const char* n : {"a", "b"}) e.push_back(std::string(n) + ":" + event + ":" + std::to_string(it));
  };
  both("before_train", 0);
  for (int64_t it = 1; it <= 5; ++it) {
    // Every step: its scalars right after it. Deferred: every log_every (2) steps and at the end,
    // before that step's after_step; the save at step 2 reads nothing new (read just before).
    if (!deferred) both("after_scalars", it);
    if (deferred && (it % 2 == 0 || it == 5))
      for (int64_t r = it % 2 == 0 ? it - 1 : it; r <= it; ++r) both("after_scalars", r);
    e.push_back("a:after_step:" + std::to_string(it));
    if (it == 2) both("before_save", 2);
    e.push_back("b:after_step:" + std::to_string(it));
  }
  both("after_train", 5);
  return e;
}

}  // namespace

// Hooks are called in the order they were added, at the documented points: before_train, each
// step's scalars (right after it, or at each deferred read) before its after_step, before_save
// from save_last, after_train.
TEST(Trainer, HooksRunInOrderAtTheirPoints) {
  for (const bool deferred : {false, true}) {
    TempDir dir;
    Config c = fake_config(dir.file("run"));
    c.train.max_batches = 5;
    c.train.log_every = 2;
    train::Trainer trainer(fake_parts(c, std::make_unique<FakeTask>(), deferred));
    std::vector<std::string> calls;
    auto a = std::make_unique<RecordingHook>("a", calls);
    auto b = std::make_unique<RecordingHook>("b", calls);
    RecordingHook* ra = a.get();
    trainer.add_hook(std::move(a));
    trainer.add_hook(std::move(b));
    const train::TrainSummary s = trainer.train();
    EXPECT_EQ(s.iterations, 5);
    EXPECT_EQ(calls, expected_calls(deferred)) << (deferred ? "deferred" : "every step");
    ASSERT_EQ(ra->records.size(), 5u);
    for (std::size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(ra->records[i].iteration, static_cast<int64_t>(i + 1));
      // The task's setting, at the state before the step.
      ASSERT_EQ(ra->records[i].settings.size(), 1u);
      EXPECT_DOUBLE_EQ(ra->records[i].settings[0], static_cast<double>(i) / 5.0);
      EXPECT_DOUBLE_EQ(ra->records[i].lr, train::learning_rate(c.train, static_cast<int64_t>(i) + 1, 5));
    }
    EXPECT_TRUE(fs::exists(dir.file("run/last.ckpt")));
  }
}

// A step of 3 micro-batches: its terms and means are the micro-batches' averages, its CountMean the
// count-weighted average, its loss the sum of its terms' averages, and its count the sum; with
// batch norm frozen (per-image outputs) the accumulated gradient is that of the whole batch in one
// micro-batch, so the weights after the step match (to float rounding).
TEST(Trainer, SubdivisionsAccumulateScalarsAndGradients) {
  TempDir dir;
  Config c = fake_config(dir.file("run"));
  c.train.batch = 6;
  c.train.subdivisions = 3;
  c.train.max_batches = 2;
  c.train.burn_in = 0;  // steps large enough to tell apart
  c.train.lr = 1.0;
  c.train.freeze_bn = true;
  std::vector<MicroLog> log;
  train::Trainer split(fake_parts(c, std::make_unique<FakeTask>(-1, &log), false));
  std::vector<std::string> calls;
  auto rec = std::make_unique<RecordingHook>("r", calls);
  RecordingHook* r = rec.get();
  split.add_hook(std::move(rec));
  split.train();
  ASSERT_EQ(log.size(), 6u);
  ASSERT_EQ(r->records.size(), 2u);
  for (int step = 0; step < 2; ++step) {
    const train::StepRecord& s = r->records[static_cast<std::size_t>(step)];
    std::vector<double> mean(4, 0.0);
    int64_t count = 0;
    for (int m = 0; m < 3; ++m) {
      const MicroLog& l = log[static_cast<std::size_t>(step * 3 + m)];
      for (int k = 0; k < 3; ++k) mean[static_cast<std::size_t>(k)] += l.values[static_cast<std::size_t>(k)] / 3.0;
      mean[3] += l.values[3] * static_cast<double>(l.count);
      count += l.count;
    }
    mean[3] /= static_cast<double>(count);
    EXPECT_EQ(s.count, 6);
    ASSERT_EQ(s.values.size(), 4u);
    for (std::size_t k = 0; k < 4; ++k) EXPECT_NEAR(s.values[k], mean[k], 1e-12) << "scalar " << k;
    EXPECT_NEAR(s.loss, mean[0] + mean[1], 1e-12);
  }
  // The same two steps as one micro-batch of 6 images (the same inputs: micro-batch k of 2 images
  // is images 2k, 2k+1 of the stream's function only through k, so compare one step of a batch whose
  // input is the three micro-batches stacked).
  train::TrainerParts whole = fake_parts(c, std::make_unique<FakeTask>(), false);
  model::YoloV2 net = whole.net;
  auto& opt = *whole.optimizer;
  for (int step = 0; step < 2; ++step) {
    train::set_lr(opt, train::learning_rate(c.train, step + 1, 2));
    opt.zero_grad();
    std::vector<at::Tensor> xs;
    for (int m = 0; m < 3; ++m) xs.push_back(FakeTask::input(step * 3 + m, 2));
    const at::Tensor out = net->forward(at::cat(xs)).flatten(1);
    (out.square().mean() + 0.25).backward();
    opt.step();
  }
  const double moved = max_abs_diff(*fake_parts(c, std::make_unique<FakeTask>(), false).net, *net);
  EXPECT_GT(moved, 1e-4) << "the steps moved the weights";
  EXPECT_LT(max_abs_diff(*split.parts().net, *net), 1e-3 * moved);
}

namespace {

train::TrainSummary run_fake(const Config& c, const train::TrainOptions& o, int64_t nan_from = -1) {
  return train::run_task(std::make_unique<FakeTask>(nan_from), c, o);
}

// metrics.csv's header and rows.
std::vector<std::string> csv_header(const std::string& path) {
  std::istringstream text(read_text(path));
  std::string first;
  std::getline(text, first);
  std::vector<std::string> header;
  std::stringstream line(first);
  for (std::string cell; std::getline(line, cell, ',');) header.push_back(cell);
  return header;
}

// Equal rows, column by column, but images_per_s (wall time).
void expect_same_metrics(const std::string& a_path, const std::string& b_path) {
  const auto header = csv_header(a_path);
  EXPECT_EQ(header, csv_header(b_path));
  const auto a = csv_rows(a_path), b = csv_rows(b_path);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t r = 0; r < a.size(); ++r) {
    ASSERT_EQ(a[r].size(), header.size());
    for (std::size_t k = 0; k < header.size(); ++k)
      if (header[k] != "images_per_s") EXPECT_EQ(a[r][k], b[r][k]) << "row " << r << " column " << header[k];
  }
}

}  // namespace

// run_task with the fake task: metrics.csv holds the engine's columns, the task's setting after lr
// and its scalars after loss; stopped after 5 steps (between two checkpoints and two evaluations)
// and resumed, the run equals the uninterrupted one: weights bit for bit, metrics.csv and eval.csv.
TEST(Trainer, StoppedAndResumedRunEqualsUninterruptedRun) {
  TempDir dir;
  const auto config = [&](const std::string& run) {
    Config c = fake_config(dir.file(run));
    c.eval.every = 3;
    return c;
  };
  train::TrainOptions o;
  const train::TrainSummary whole = run_fake(config("whole"), o);
  EXPECT_EQ(whole.iterations, 12);
  EXPECT_EQ(
      csv_header(dir.file("whole/metrics.csv")),
      (std::vector<std::string>{"iteration", "epoch", "images_seen", "lr", "progress", "size", "loss", "fit", "bias",
                                "out_mean", "share", "count", "images_per_s", "loss_scale", "overflow_skips"}));
  train::TrainOptions first = o;
  first.stop_after = 5;
  EXPECT_TRUE(run_fake(config("parts"), first).interrupted);
  EXPECT_EQ(csv_rows(dir.file("parts/metrics.csv")).size(), 5u);
  train::TrainOptions rest = o;
  rest.resume = dir.file("parts/last.ckpt");
  const train::TrainSummary resumed = run_fake(Config{}, rest);
  EXPECT_FALSE(resumed.interrupted);
  EXPECT_EQ(resumed.iterations, 12);
  auto a = io::load_checkpoint(dir.file("whole/last.ckpt")), b = io::load_checkpoint(dir.file("parts/last.ckpt"));
  EXPECT_TRUE(bit_identical(*a.model, *b.model));
  expect_same_metrics(dir.file("whole/metrics.csv"), dir.file("parts/metrics.csv"));
  EXPECT_EQ(read_text(dir.file("whole/eval.csv")), read_text(dir.file("parts/eval.csv")));
  EXPECT_EQ(csv_rows(dir.file("whole/eval.csv")).size(), 4u);  // at 3, 6, 9 and the end
  EXPECT_DOUBLE_EQ(whole.best_map, resumed.best_map);
  EXPECT_TRUE(fs::exists(dir.file("whole/score.png")));
}

// The scalars a GPU run reads only every train.log_every steps and before each save (deferred, here
// forced on the CPU) are those read after every step: the same metrics.csv (but its images_per_s,
// a window's mean then), the same weights, a resume from a stop between two reads included.
TEST(Trainer, DeferredScalarsEqualScalarsReadEveryStep) {
  TempDir dir;
  train::TrainOptions each;
  each.evaluate = false;
  each.deferred_scalars = false;
  run_fake(fake_config(dir.file("each")), each);
  train::TrainOptions deferred = each;
  deferred.deferred_scalars = true;
  deferred.stop_after = 5;  // a stop between two reads (5 is neither a log nor a checkpoint step)
  EXPECT_TRUE(run_fake(fake_config(dir.file("deferred")), deferred).interrupted);
  train::TrainOptions resume = each;
  resume.deferred_scalars = true;
  resume.resume = dir.file("deferred/last.ckpt");
  EXPECT_EQ(run_fake(Config{}, resume).iterations, 12);
  expect_same_metrics(dir.file("each/metrics.csv"), dir.file("deferred/metrics.csv"));
  // Deferral happened: a read's steps share one images_per_s (their mean), which steps read one by
  // one do not.
  const auto header = csv_header(dir.file("each/metrics.csv"));
  const auto ips = static_cast<std::size_t>(std::find(header.begin(), header.end(), "images_per_s") - header.begin());
  ASSERT_LT(ips, header.size());
  const auto a = csv_rows(dir.file("each/metrics.csv")), b = csv_rows(dir.file("deferred/metrics.csv"));
  EXPECT_EQ(b[0][ips], b[1][ips]);
  EXPECT_EQ(b[1][ips], b[2][ips]);
  EXPECT_NE(a[0][ips], a[1][ips]);
  auto wa = io::load_checkpoint(dir.file("each/last.ckpt")), wb = io::load_checkpoint(dir.file("deferred/last.ckpt"));
  EXPECT_EQ(max_abs_diff(*wa.model, *wb.model), 0.0);
}

// A non-finite loss term (NaN from step 7 on, with a NaN gradient): read after every step it stops
// the run before its backward pass, or (train.skip_nonfinite) skips the batch; with deferred scalars
// it is found at the next read, and the run stops before saving any weights of the steps after it.
TEST(Trainer, NonFiniteLossStopsTheRunBeforeItIsSaved) {
  TempDir dir;
  train::TrainOptions o;
  o.evaluate = false;
  for (const bool deferred : {false, true}) {
    const std::string run = deferred ? "deferred" : "each";
    o.deferred_scalars = deferred;
    Config c = fake_config(dir.file(run));
    c.train.checkpoint_every = deferred ? 3 : 1;  // deferred: saves at the reads, the last one before step 7
    const std::string message = error_of([&] { run_fake(c, o, 7); });
    ASSERT_NE(message.find("loss term 'fit' is not finite"), std::string::npos) << run << ": " << message;
    const auto at = message.find("iteration ");
    ASSERT_NE(at, std::string::npos);
    const int64_t bad = std::stoll(message.substr(at + 10));
    EXPECT_EQ(bad, 7) << run;
    // Every saved state is finite and from before the bad step.
    ASSERT_TRUE(fs::exists(dir.file(run + "/last.ckpt"))) << run;
    auto ck = io::load_checkpoint(dir.file(run + "/last.ckpt"));
    EXPECT_EQ(ck.state->iteration, 6) << run;  // both: the save after step 6
    for (const auto& t : ck.model->parameters()) EXPECT_TRUE(t.isfinite().all().item<bool>()) << run;
    if (deferred) {  // found at the read after step 9 (train.log_every 3), two steps later
      EXPECT_NE(message.find("2 steps later; none of them was saved"), std::string::npos) << message;
    } else {
      EXPECT_EQ(message.find("steps later"), std::string::npos) << message;
    }
    EXPECT_NE(message.find("The last good state is in " + dir.file(run + "/last.ckpt")), std::string::npos) << message;
  }
  // train.skip_nonfinite: the run goes on to its end; the skipped steps have no metrics row, and the
  // weights stay finite (no NaN gradient reached them).
  Config c = fake_config(dir.file("skip"));
  c.train.skip_nonfinite = true;
  o.deferred_scalars = std::nullopt;
  const train::TrainSummary s = run_fake(c, o, 7);
  EXPECT_EQ(s.iterations, 12);
  EXPECT_EQ(csv_rows(dir.file("skip/metrics.csv")).size(), 6u);
  auto ck = io::load_checkpoint(dir.file("skip/last.ckpt"));
  for (const auto& t : ck.model->parameters()) EXPECT_TRUE(t.isfinite().all().item<bool>());
}
