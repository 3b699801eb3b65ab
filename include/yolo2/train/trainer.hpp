// `yolo2 train` and `yolo2 pretrain`: a Trainer owns the loop and the step (darknet's optimiser
// semantics: subdivisions x (batch, forward, loss, backward), then one optimizer step) and calls
// hooks at fixed points (detectron2's pattern): checkpoints and the stop save, periodic evaluation
// with the best checkpoint, the CSV logs and plots, progress, and the stop agreement between ranks
// (train/hooks.hpp). What it trains is a TrainTask: the detector (region loss, run_training) or the
// Darknet19 classifier (softmax cross-entropy, run_pretraining). The run folder is run_folder.hpp's.
#pragma once

#include <torch/optim/optimizer.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "yolo2/config.hpp"
#include "yolo2/model/yolov2.hpp"
#include "yolo2/train/checkpoint.hpp"
#include "yolo2/train/distributed.hpp"
#include "yolo2/train/run_folder.hpp"

namespace yolo2::train {

struct TrainOptions {
  std::string resume;                         // a last.ckpt to continue from (its stored config is used)
  std::vector<std::string> resume_overrides;  // `key=value` applied to the stored config on resume
  bool overwrite = false;                     // start afresh in a run folder that already holds a run
  bool evaluate = true;                       // periodic and final evaluation on data.test
  // Stop (save last.ckpt, resumable) after this many iterations of this process; -1: never.
  // For jobs with a wall-time limit, and for tests of resume.
  int64_t stop_after = -1;
  // This process's place in a multi-process job (default: alone). With world_size > 1, every rank
  // runs run_training with the same config; rank 0 writes the run folder.
  DistOptions dist;
};

struct TrainSummary {
  std::string run_dir;
  int64_t iterations = 0;  // optimizer steps done in total
  int64_t images_seen = 0;
  bool interrupted = false;  // stopped by a signal; resumable from last.ckpt
  double final_map = -1;     // at the last evaluation (-1: none)
  double best_map = -1;
  int64_t best_iteration = -1;
  double seconds = 0;
  double images_per_second = 0;
};

// Runs training until train.max_batches (or train.epochs) or a stop request. Throws yolo2::Error
// on bad input and on a non-finite loss (unless train.skip_nonfinite), after which last.ckpt still
// holds the last good state.
TrainSummary run_training(Config config, const TrainOptions& options);

// `yolo2 pretrain`: the same for a classifier config (model.head: classifier) on ImageFolder data,
// with top-1 / top-5 on data.test; at the end it writes RUN/backbone.conv.<classify.prefix_layers>
// (final_map and best_map hold top-1).
TrainSummary run_pretraining(Config config, const TrainOptions& options);

// Training mode, with batch norm kept in evaluation mode when `freeze_bn` (train.freeze_bn).
void set_train_mode(model::YoloV2Impl& net, bool freeze_bn);

// Iterations a config trains for on a training set of `train_images` images.
int64_t total_iterations(const TrainConfig& train, int64_t train_images);

// How a task's per-micro-batch scalars combine into a step's (over micro-batches and ranks).
enum class ScalarKind {
  Term,       // a loss term per image: averaged, and summed into the step's loss
  Mean,       // a diagnostic averaged like a term, not part of the loss
  CountMean,  // a diagnostic averaged over the items it was measured on (`count`: ground truths, images)
};
struct ScalarSpec {
  std::string name;  // metrics.csv column
  ScalarKind kind;
};

// One micro-batch's forward pass and loss.
struct MicroResult {
  at::Tensor total;            // the loss to back-propagate
  std::vector<double> values;  // one per TrainTask::scalars()
  int64_t count = 0;           // items behind the CountMean values
  int size = 0;                // input side of the batch
};

class Trainer;

// What the loop trains: owns the training stream and the loss.
class TrainTask {
 public:
  virtual ~TrainTask() = default;
  virtual const std::vector<ScalarSpec>& scalars() const = 0;
  virtual int64_t train_images() const = 0;
  virtual bool uses_gamma() const = 0;  // the focal gamma schedule applies (metrics and progress show it)
  // Opens the stream at the state's position (called once the hooks' before_train have run).
  virtual void open(const Trainer& trainer) = 0;
  // The next micro-batch (the s-th of its step): forward and loss.
  virtual MicroResult micro_step(Trainer& trainer, int s, double gamma) = 0;
  virtual void skip_micro_batch() = 0;  // keeps the stream aligned when a step is abandoned
};

// One optimizer step as the hooks see it.
struct StepRecord {
  double lr = 0, gamma = 0;
  int size = 0;                // input side of the step's batches
  double loss = 0;             // the total loss per image
  std::vector<double> values;  // the task's scalars (all ranks)
  int64_t count = 0;
  double seconds = 0;     // wall time of the step
  double loss_scale = 1;  // fp16's loss scale the step used (1 without loss scaling)
  bool overflow = false;  // fp16: the gradients overflowed and the optimizer step was skipped
};

// Called by the Trainer in the order the hooks were added. Every rank calls every hook; hooks that
// write files do so on the main rank only.
class Hook {
 public:
  virtual ~Hook() = default;
  virtual void before_train(Trainer&) {}
  virtual void after_step(Trainer&) {}   // after each optimizer step (a skipped batch is none)
  virtual void before_save(Trainer&) {}  // main rank, just before last.ckpt is written
  virtual void after_eval(Trainer&) {}   // main rank, after an evaluation was scored
  virtual void after_train(Trainer&) {}  // the loop ended, finished or stopped
};

// What a Trainer works on; run_training and run_pretraining build it from the config.
struct TrainerParts {
  Config config;
  c10::Device device{c10::kCPU};
  PrecisionPlan precision;            // runtime.precision on this device
  std::unique_ptr<Distributed> dist;  // null: a single process
  RunFolder folder;
  model::YoloV2 net{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  TrainState state;  // where the run stands (a resumed one continues from it)
  std::unique_ptr<TrainTask> task;
  int64_t max_batches = 0;
  // The learning rate of an update (counted from 1); unset: learning_rate(config.train, ., max_batches).
  std::function<double(int64_t)> lr_at;
};

class Trainer {
 public:
  explicit Trainer(TrainerParts parts);
  void add_hook(std::unique_ptr<Hook> hook);
  // The loop: run_step until max_batches or a stop request, with the hooks around it.
  TrainSummary train();

  // For hooks.
  TrainerParts& parts() { return p_; }
  const Config& config() const { return p_.config; }
  TrainState& state() { return p_.state; }
  bool main_rank() const { return !p_.dist || p_.dist->is_main(); }
  int64_t max_batches() const { return p_.max_batches; }
  bool at_end() const { return p_.state.iteration == p_.max_batches; }
  double epoch() const;  // images seen / training images
  const StepRecord& last_step() const { return step_; }
  int64_t first_iteration() const { return first_iteration_; }  // where this process started
  int64_t images_this_run() const { return images_this_run_; }  // trained on by this process
  double loop_seconds() const;                                  // since the loop started
  TrainSummary& summary() { return summary_; }
  void request_stop() { stopping_ = true; }
  bool stopping() const { return stopping_; }
  // The network in training mode (batch norm frozen with train.freeze_bn).
  void set_train_mode();
  // Main rank: the before_save hooks, then last.ckpt (model, optimizer, state and RNG).
  void save_last();
  // Main rank: the after_eval hooks.
  void notify_eval();

 private:
  // subdivisions x (batch, forward, loss, backward), then the optimizer step; false when the batch
  // was skipped for a non-finite loss (train.skip_nonfinite).
  bool run_step();
  void optimizer_step();
  bool skip_or_throw(const std::string& bad_term);

  TrainerParts p_;
  std::vector<std::unique_ptr<Hook>> hooks_;
  StepRecord step_;
  TrainSummary summary_;
  int64_t first_iteration_ = 0;
  int64_t images_this_run_ = 0;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point t_loop_;
};

}  // namespace yolo2::train
