// The hooks of a training run, in the order run_training and run_pretraining add them (each step:
// metrics row and progress line as the step's scalars are read, then stop agreement, checkpoint,
// evaluation).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "yolo2/data/image_folder.hpp"
#include "yolo2/data/voc.hpp"
#include "yolo2/train/trainer.hpp"

namespace yolo2::train {

// metrics.csv (one row per step; written with every last.ckpt and at the end) and loss.png.
std::unique_ptr<Hook> metrics_hook();

// One log line every train.log_every steps and at the end: the loss terms, darknet's diagnostics,
// learning rate, gamma, input size, rate and ETA.
std::unique_ptr<Hook> progress_hook();

// Stops after a SIGINT/SIGTERM or `stop_after` steps of this process (-1: never); with several
// ranks, all stop at the same step when any one asks.
std::unique_ptr<Hook> stop_hook(int64_t stop_after);

// last.ckpt every train.checkpoint_every steps, at the last step and on a stop.
std::unique_ptr<Hook> checkpoint_hook();

// Evaluation on data.test every eval.every steps (not at the last) and once at the end, spread over
// the ranks: eval.csv, map.png, the table in the log, and best.ckpt when the mAP improves. Without a
// test set (--no-eval) it scores nothing but still saves last.ckpt at those steps and at the end.
std::unique_ptr<Hook> evaluation_hook(std::optional<data::VocDataset> test);

// The same for a classifier on its val split: top-1 and top-5 in eval.csv and accuracy.png, and
// best.ckpt when top-1 improves.
std::unique_ptr<Hook> classifier_evaluation_hook(std::optional<data::ImageFolderDataset> val);

}  // namespace yolo2::train
