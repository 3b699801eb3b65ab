// Pure functions of training progress: the learning rate (darknet's burn-in, steps, or cosine),
// the focal gamma ("soft gamma": raised as training goes on) and the multi-scale input size.
// Being pure, a resumed run gets exactly the values of an uninterrupted one.
#pragma once

#include <cstdint>

#include "yolo2/config.hpp"

namespace yolo2::train {

// darknet's get_current_rate at an update: `update` is the number of the optimizer step being made,
// counted from 1 (darknet's get_current_batch, read after `seen` has grown by this step's images;
// PJ src/network.c). So the 40,000th update of yolov2-voc (steps=40000) already gets 1e-4, and the
// first update of a burn-in gets lr * (1 / burn_in)^power, not 0. The trainer passes its 0-based
// iteration + 1.
//  update < burn_in: lr * (update / burn_in)^power;
//  steps: lr times every scale whose step is <= update;
//  cosine: lr * (1 + cos(pi * (update - burn_in) / (max_batches - burn_in))) / 2;
//  constant: lr;
//  poly: lr * (1 - update / max_batches)^power (darknet's classifiers).
double learning_rate(const TrainConfig& train, int64_t update, int64_t max_batches);

// Gamma at a fraction of training `progress` in [0, 1] (iteration / max_batches).
//  constant: focal.gamma; step: values[k], k = number of milestones <= progress;
//  linear / cosine: start before span_begin, end after span_end, a ramp in between.
double focal_gamma(const FocalConfig& focal, double progress);

// Multi-scale input size of an iteration (darknet: a new size every 10 iterations, drawn
// uniformly from the list; the largest for the last multiscale_final iterations). The draw of a
// group of iterations depends only on (seed, group), so every rank and every resume agree.
int multiscale_size(const DataConfig& data, int64_t iteration, int64_t max_batches, uint64_t seed);

}  // namespace yolo2::train
