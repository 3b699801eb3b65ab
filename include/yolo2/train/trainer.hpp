// `yolo2 train`: the training loop with darknet's optimiser semantics, checkpoint/resume that
// reproduces an uninterrupted run, periodic VOC evaluation, CSV logs and plots.
//
// Run folder (train.output, default runs/<train.name>):
//   config.yaml   the resolved config          metrics.csv  one row per iteration
//   last.ckpt     every train.checkpoint_every  eval.csv     one row per evaluation
//   best.ckpt     best test mAP so far          loss.png, map.png
#pragma once

#include <string>
#include <vector>

#include "yolo2/config.hpp"
#include "yolo2/train/distributed.hpp"

namespace yolo2::train {

struct TrainOptions {
  std::string resume;        // a last.ckpt to continue from (its stored config is used)
  std::vector<std::string> resume_overrides;  // `key=value` applied to the stored config on resume
  bool overwrite = false;    // start afresh in a run folder that already holds a run
  bool evaluate = true;      // periodic and final evaluation on data.test
  // Stop (save last.ckpt, resumable) after this many iterations of this process; -1: never.
  // For jobs with a wall-time limit, and for tests of resume.
  int64_t stop_after = -1;
  // This process's place in a multi-process job (default: alone). With world_size > 1, every rank
  // runs run_training with the same config; rank 0 writes the run folder.
  DistOptions dist;
};

struct TrainSummary {
  std::string run_dir;
  int64_t iterations = 0;       // optimizer steps done in total
  int64_t images_seen = 0;
  bool interrupted = false;     // stopped by a signal; resumable from last.ckpt
  double final_map = -1;        // at the last evaluation (-1: none)
  double best_map = -1;
  int64_t best_iteration = -1;
  double seconds = 0;
  double images_per_second = 0;
};

// Runs training until train.max_batches (or train.epochs) or a stop request. Throws yolo2::Error
// on bad input and on a non-finite loss (unless train.skip_nonfinite), after which last.ckpt still
// holds the last good state.
TrainSummary run_training(Config config, const TrainOptions& options);

// Iterations a config trains for on a training set of `train_images` images.
int64_t total_iterations(const TrainConfig& train, int64_t train_images);

}  // namespace yolo2::train
