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
#include "yolo2/util/background_writer.hpp"

namespace yolo2::train {

struct TrainOptions {
  std::string resume;                         // a last.ckpt to continue from (its stored config is used)
  std::vector<std::string> resume_overrides;  // `key=value` applied to the stored config on resume
  // With resume: continue the run in this new folder instead of the checkpoint's (a branch: the
  // earlier folder is left as it is; its metrics.csv, eval.csv and best.ckpt are copied over).
  std::string branch;
  bool overwrite = false;  // start afresh in a run folder that already holds a run
  bool evaluate = true;    // periodic and final evaluation on data.test
  // Stop (save last.ckpt, resumable) after this many iterations of this process; -1: never.
  // For jobs with a wall-time limit, and for tests of resume.
  int64_t stop_after = -1;
  // This process's place in a multi-process job (default: alone). With world_size > 1, every rank
  // runs run_training with the same config; rank 0 writes the run folder.
  DistOptions dist;
  // Read the step's scalars (the loss terms, metrics.csv's columns) only every train.log_every steps
  // and before each save or evaluation, instead of after every step (see Trainer). Unset: on for a
  // GPU. Off whatever it says with train.skip_nonfinite. Tests (and `train --scalars`) set it on the CPU.
  std::optional<bool> deferred_scalars;
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
  at::Tensor total;   // the loss to back-propagate
  at::Tensor values;  // [scalars().size()] float64, no gradient, on the loss's device
  int64_t count = 0;  // items behind the CountMean values (known on the host)
  int size = 0;       // input side of the batch
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
  int64_t iteration = 0;    // the state after the step
  int64_t images_seen = 0;  // likewise
  double lr = 0, gamma = 0;
  int size = 0;                // input side of the step's batches
  double loss = 0;             // the total loss per image
  std::vector<double> values;  // the task's scalars (all ranks)
  int64_t count = 0;
  // Wall time of the step; with deferred scalars, the mean over the steps read together, the hooks'
  // time left out (a GPU step's end is only known at a synchronisation).
  double seconds = 0;
  double loss_scale = 1;       // fp16's loss scale the step used (1 without loss scaling)
  bool overflow = false;       // fp16: the gradients overflowed and the optimizer step was skipped
  int64_t overflow_skips = 0;  // fp16: steps skipped so far in the run
};

// Called by the Trainer in the order the hooks were added. Every rank calls every hook; hooks that
// write files do so on the main rank only.
class Hook {
 public:
  virtual ~Hook() = default;
  virtual void before_train(Trainer&) {}
  virtual void after_step(Trainer&) {}  // after each optimizer step (a skipped batch is none)
  // Each step's scalars, in step order: right after the step, before its after_step; with deferred
  // scalars, every train.log_every steps, before a save or evaluation and at the end, for the steps
  // since (so after_step of a step may come first).
  virtual void after_scalars(Trainer&, const StepRecord&) {}
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
  bool deferred_scalars = false;  // TrainOptions::deferred_scalars, resolved
};

// The step's scalars (loss terms and diagnostics: metrics.csv, the progress line) are read on the
// host after every step, and checked before the backward pass: a non-finite loss stops the run or
// (train.skip_nonfinite) skips the batch. With deferred scalars (a GPU) they stay on the device and
// are read every train.log_every steps (the default 1 reads every step), before each save or
// evaluation and at the end, in one transfer (and under several processes one all-reduce), so that
// the GPU does not wait for the host in between; a non-finite loss is then found at that read and
// stops the run (every rank at the same step) before any weights of the steps since are saved
// (last.ckpt or best.ckpt).
class Trainer {
 public:
  explicit Trainer(TrainerParts parts);
  void add_hook(std::unique_ptr<Hook> hook);
  // The loop: run_step until max_batches or a stop request, with the hooks around it.
  TrainSummary train();

  // For hooks.
  TrainerParts& parts() { return p_; }
  const TrainerParts& parts() const { return p_; }
  const Config& config() const { return p_.config; }
  TrainState& state() { return p_.state; }
  bool main_rank() const { return !p_.dist || p_.dist->is_main(); }
  int64_t max_batches() const { return p_.max_batches; }
  bool at_end() const { return p_.state.iteration == p_.max_batches; }
  double epoch(int64_t images_seen) const;                      // images_seen / training images
  double epoch() const { return epoch(p_.state.images_seen); }  // where the loop is now
  int64_t first_iteration() const { return first_iteration_; }  // where this process started
  int64_t images_this_run() const { return images_this_run_; }  // trained on by this process
  double loop_seconds() const;                                  // since the loop started
  TrainSummary& summary() { return summary_; }
  void request_stop() { stopping_ = true; }
  bool stopping() const { return stopping_; }
  // The network in training mode (batch norm frozen with train.freeze_bn).
  void set_train_mode();
  // Main rank: the before_save hooks, then last.ckpt (model, optimizer, state and RNG): serialised
  // here (a snapshot), written and fsynced on a background thread while training goes on; the
  // previous save is waited for first, so its failure (a full disk) surfaces here.
  void save_last();
  // Returns once every save handed to the background writer is on disk (rethrows a failed write).
  // train() calls it before it returns.
  void wait_for_saves();
  // Wall-clock seconds since last.ckpt was last saved (or the loop started).
  double seconds_since_save() const;
  // Main rank: the after_eval hooks.
  void notify_eval();
  // Reads the scalars of the steps not read yet (one transfer) and hands them to the hooks; throws
  // when one of them has a non-finite loss term (deferred scalars). save_last() calls it first.
  void read_scalars();
  bool deferred_scalars() const { return deferred_; }

 private:
  // subdivisions x (batch, forward, loss, backward), then the optimizer step; false when the batch
  // was skipped for a non-finite loss (train.skip_nonfinite).
  bool run_step();
  void optimizer_step();
  bool skip_or_throw(const std::string& bad_term);
  [[noreturn]] void throw_non_finite(const std::string& bad_term, int64_t iteration, bool later_steps) const;
  // Adds a micro-batch's values, weighted (terms and means by w, the others by their count).
  void accumulate(const MicroResult& r, double w);
  struct Pending;
  // Deferred scalars under several processes: `rows` (one per pending step) made global, and each
  // step's count the global one.
  at::Tensor global_rows(const at::Tensor& rows, std::vector<Pending>& done, const std::vector<ScalarSpec>& specs);

  TrainerParts p_;
  std::vector<std::unique_ptr<Hook>> hooks_;
  StepRecord current_;  // the step being made
  // Steps done but not read yet: the record without its values, and the values on the device.
  struct Pending {
    StepRecord record;
    at::Tensor values;
  };
  std::vector<Pending> pending_;
  at::Tensor step_values_;  // the current step's weighted sum so far
  at::Tensor step_loss_;    // and its loss (terms summed per micro-batch, then weighted)
  bool deferred_ = false;
  at::Tensor count_mask_, other_mask_;            // 1 at the CountMean scalars / at the others (float64)
  std::chrono::steady_clock::time_point t_read_;  // when the scalars were last read
  double hook_seconds_ = 0;                       // spent in after_step hooks since then
  TrainSummary summary_;
  int64_t first_iteration_ = 0;
  int64_t images_this_run_ = 0;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point t_loop_;
  std::chrono::steady_clock::time_point t_saved_;
  util::BackgroundWriter writer_;  // last; destroyed first: a write in flight finishes before the rest goes
};

}  // namespace yolo2::train
