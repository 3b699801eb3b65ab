// The hooks of a training run, in the order run_training and run_pretraining add them (each step:
// metrics row and progress line as the step's scalars are read, then stop agreement, checkpoint,
// evaluation).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "yolo2/train/trainer.hpp"

namespace yolo2::train {

// metrics.csv (one row per step; written with every last.ckpt and at the end) and loss.png.
std::unique_ptr<Hook> metrics_hook();

// TensorBoard event files in the run folder (train.tensorboard; main rank): metrics.csv's columns,
// eval.csv's scores and the plots, written with each last.ckpt (tensorboard_hook.cpp).
std::unique_ptr<Hook> tensorboard_hook();

// One log line every train.log_every steps and at the end: the loss terms, darknet's diagnostics,
// learning rate, the task's settings (the focal gamma), input size, rate and ETA.
std::unique_ptr<Hook> progress_hook();

// Stops after a SIGINT/SIGTERM or `stop_after` steps of this process (-1: never); with several
// ranks, all stop at the same step when any one asks.
std::unique_ptr<Hook> stop_hook(int64_t stop_after);

// last.ckpt every train.checkpoint_every steps, at the last step and on a stop.
std::unique_ptr<Hook> checkpoint_hook();

// Evaluation every eval.every steps (not at the last) and once at the end, scored by the task's
// Evaluation (spread over the ranks as it chooses): eval.csv, its plot, and best.ckpt when the first
// score improves. Null (--no-eval) scores nothing but still saves last.ckpt at those steps and at the end.
std::unique_ptr<Hook> evaluation_hook(std::unique_ptr<Evaluation> evaluation);

}  // namespace yolo2::train
