// The run API: `yolo2 train` and `yolo2 pretrain` (and any task of tasks.hpp's registry) as one
// call: from a config (or a checkpoint to resume) to a finished or stopped run folder. The engine
// that runs them is trainer.hpp's.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "yolo2/config.hpp"
#include "yolo2/runtime/distributed.hpp"

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
  // runs the same config; rank 0 writes the run folder.
  runtime::DistOptions dist;
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
  double final_map = -1;     // the evaluation's first score at the last evaluation (-1: none)
  double best_map = -1;
  int64_t best_iteration = -1;
  double seconds = 0;
  double images_per_second = 0;
};

class Task;

// Runs `task` until its last iteration or a stop request: the resume, the device and the ranks, the
// run folder, the task's data, the network, optimizer and state, the Trainer and its hooks. Throws
// yolo2::Error on bad input and on a non-finite loss (unless train.skip_nonfinite), after which
// last.ckpt still holds the last good state.
TrainSummary run_task(std::unique_ptr<Task> task, Config config, const TrainOptions& options);

// `yolo2 train`: the detector (tasks.hpp's "train").
TrainSummary run_training(Config config, const TrainOptions& options);

// `yolo2 pretrain`: the Darknet19 classifier (model.head: classifier) on ImageFolder data, with
// top-1 / top-5 on data.test; at the end it writes RUN/backbone.conv.<classify.prefix_layers>
// (final_map and best_map hold top-1).
TrainSummary run_pretraining(Config config, const TrainOptions& options);

// Iterations a config trains for on a training set of `train_images` images.
int64_t total_iterations(const TrainConfig& train, int64_t train_images);

}  // namespace yolo2::train
