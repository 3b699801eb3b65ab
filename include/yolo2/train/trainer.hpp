// The training engine: a Trainer owns the loop and the step (darknet's optimiser semantics:
// subdivisions x (batch, forward, loss, backward), then one optimizer step) and calls hooks at fixed
// points (detectron2's pattern): checkpoints and the stop save, periodic evaluation with the best
// checkpoint, the CSV logs and plots, progress, and the stop agreement between ranks
// (train/hooks.hpp). What it trains is a Task (task.hpp), which it knows only through that
// interface: scalars by name, settings by name, no loss and no head. run.hpp builds a Trainer from
// a config; the run folder is run_folder.hpp's.
#pragma once

#include <torch/optim/optimizer.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "yolo2/config.hpp"
#include "yolo2/io/checkpoint.hpp"
#include "yolo2/model/yolov2.hpp"
#include "yolo2/runtime/distributed.hpp"
#include "yolo2/train/run.hpp"
#include "yolo2/train/run_folder.hpp"
#include "yolo2/train/task.hpp"
#include "yolo2/util/background_writer.hpp"

namespace yolo2::train {

// The rooms below the engine whose types it holds (io: checkpoints; runtime: precision, ranks).
using io::TrainState;
using runtime::Distributed;
using runtime::LossScale;
using runtime::PrecisionPlan;

// Training mode, with batch norm kept in evaluation mode when `freeze_bn` (train.freeze_bn).
void set_train_mode(model::YoloV2Impl& net, bool freeze_bn);

// One optimizer step as the hooks see it.
struct StepRecord {
  int64_t iteration = 0;    // the state after the step
  int64_t images_seen = 0;  // likewise
  double lr = 0;
  std::vector<double> settings;  // the task's settings() at the step (the focal gamma)
  int size = 0;                  // input side of the step's batches
  double loss = 0;               // the total loss per image
  std::vector<double> values;    // the task's scalars (all ranks)
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

// What a Trainer works on; run_task builds it from the config (the bench by hand).
struct TrainerParts {
  Config config;
  c10::Device device{c10::kCPU};
  PrecisionPlan precision;            // runtime.precision on this device
  std::unique_ptr<Distributed> dist;  // null: a single process
  RunFolder folder;
  model::YoloV2 net{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  TrainState state;  // where the run stands (a resumed one continues from it)
  std::unique_ptr<Task> task;
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
  int64_t max_batches() const { return p_.task->max_batches(); }
  bool at_end() const { return p_.state.iteration == max_batches(); }
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

  // One step as train() makes it, without the hooks: subdivisions x (batch, forward, loss,
  // backward), then the optimizer step; false when the batch was skipped for a non-finite loss
  // (train.skip_nonfinite). train() calls it; the bench times it (task opened first).
  bool run_step();
  // The bench's view inside a step: called (when set) after the task's forward pass (the task calls
  // phase(Forward)), after each micro-batch's loss, after each backward pass and after the optimizer
  // step.
  enum class Phase { Forward, Loss, Backward, Step };
  void set_phase_probe(std::function<void(Phase)> probe) { probe_ = std::move(probe); }
  void phase(Phase ph) const {
    if (probe_) probe_(ph);
  }

 private:
  std::optional<std::string> check_now(MicroResult& r);
  void backward(const MicroResult& r, bool last, int sub);
  void optimizer_step();
  void end_step(std::chrono::steady_clock::time_point t0);
  bool skip_or_throw(const std::string& bad_term);
  [[noreturn]] void throw_non_finite(const std::string& bad_term, int64_t iteration, bool later_steps) const;
  // Adds a micro-batch's values, weighted (terms and means by w, the others by their count).
  void accumulate(const MicroResult& r, double w);
  struct Pending;
  // Deferred scalars under several processes: `rows` (one per pending step) made global, and each
  // step's count the global one.
  at::Tensor global_rows(const at::Tensor& rows, std::vector<Pending>& done, const ScalarSpecs& specs);
  // The first micro-batch's names checked against the task's scalars() (a task built wrongly).
  void check_names(const loss::NamedScalars& values);

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
  bool names_checked_ = false;
  std::function<void(Phase)> probe_;
  TrainSummary summary_;
  int64_t first_iteration_ = 0;
  int64_t images_this_run_ = 0;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point t_loop_;
  std::chrono::steady_clock::time_point t_saved_;
  util::BackgroundWriter writer_;  // last; destroyed first: a write in flight finishes before the rest goes
};

}  // namespace yolo2::train
