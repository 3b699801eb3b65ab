// Shared by the trainer, checkpoint, model and distributed tests: tiny generated datasets, a tiny
// config, random batch-norm statistics, weight comparison, and running the real yolo2 binary.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"
#include "yolo2/config.hpp"
#include "yolo2/data/synth.hpp"
#include "yolo2/model/yolov2.hpp"

namespace yolo2::testing {

// A few large, easy objects per image.
inline std::string make_dataset(const TempDir& dir, int images, int size, uint64_t seed) {
  data::SynthOptions so;
  so.out_dir = dir.file("voc");
  so.train = images;
  so.test = 0;
  so.size = size;
  so.seed = seed;
  so.num_classes = 6;
  so.imbalance = 2;
  so.max_objects = 2;
  so.threads = 1;
  data::write_synth(so);
  return so.out_dir;
}

inline Config tiny_config(const std::string& root, const std::string& run_dir) {
  std::ostringstream y;
  y << "data:\n"
       "  classes: [square, circle, triangle, star, ring, cross]\n"
       "  train: [{root: "
    << root
    << ", split: trainval}]\n"
       "  test: [{root: "
    << root
    << ", split: trainval}]\n"
       "  input_size: 128\n"
       "  multiscale_sizes: []\n"
       "  augment: {jitter: 0.0, flip: false, hue: 0.0, saturation: 1.0, exposure: 1.0}\n"
       "  workers: 0\n"
       "  train_difficult: true\n"
       "model:\n"
       "  width: 0.25\n"
       "  bn_momentum: 0.1\n"
       "  objectness_prior: 0.01\n"
       "  anchors: [0.4, 0.4, 0.8, 0.8, 1.2, 1.2, 1.7, 1.7, 2.4, 2.4]\n"
       "loss:\n"
       "  warmup_images: 0\n"
       "train:\n"
       "  batch: 8\n"
       "  subdivisions: 1\n"
       "  lr: 0.01\n"
       "  burn_in: 20\n"
       "  policy: steps\n"
       "  steps: [200]\n"
       "  scales: [0.1]\n"
       "  max_batches: 300\n"
       "  checkpoint_every: 100\n"
       "  log_every: 100\n"
       "  output: "
    << run_dir
    << "\n"
       "eval:\n"
       "  every: 0\n"
       "  batch: 8\n"
       "runtime:\n"
       "  device: cpu\n"  // CPU tests stay on the CPU on a GPU machine too (test_cuda.cpp sets cuda)
       "  threads: 1\n"   // ctest runs two tests at a time (scripts/test.sh): one core each
       "  seed: 5\n";
  return parse_config(y.str(), "tiny");
}

// A generated ImageFolder set (yolo2 synth --classification) at 64 px in dir/cls.
inline std::string make_classification_set(const TempDir& dir, int train, int val, int classes, uint64_t seed) {
  data::SynthOptions so;
  so.out_dir = dir.file("cls");
  so.classification = true;
  so.train = train;
  so.test = val;
  so.size = 64;
  so.num_classes = classes;
  so.clutter = 0;
  so.seed = seed;
  so.threads = 1;
  data::write_synth(so);
  return so.out_dir;
}

// The Darknet19 classifier (width 0.25) at 64 px: Adam, poly lr, 120 iterations of 16 images.
inline Config classifier_config(const std::string& root, const std::string& run_dir) {
  return parse_config(
      "data:\n  classes: []\n  train: [{root: " + root + ", split: train}]\n  test: [{root: " + root +
          ", split: train}]\n  input_size: 64\n  multiscale_sizes: []\n  workers: 0\n"
          "  augment: {flip: true, hue: 0.0, saturation: 1.0, exposure: 1.0}\n"
          "model:\n  head: classifier\n  width: 0.25\n  bn_momentum: 0.1\n"
          "classify: {min_crop: 64, max_crop: 72}\n"
          "train:\n  optimizer: adam\n  batch: 16\n  subdivisions: 2\n  lr: 0.002\n  burn_in: 10\n  policy: poly\n"
          "  power: 1\n  max_batches: 120\n  checkpoint_every: 40\n  log_every: 40\n  output: " +
          run_dir + "\neval:\n  every: 0\n  batch: 16\nruntime:\n  device: cpu\n  threads: 1\n  seed: 3\n",
      "pretrain-test");
}

// A CSV file of numbers (metrics.csv, eval.csv), the header line skipped.
inline std::vector<std::vector<double>> csv_rows(const std::string& path) {
  std::vector<std::vector<double>> rows;
  std::istringstream in(read_text(path));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {  // numbers as written, to 8 significant digits
    std::vector<double> v;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) v.push_back(std::stod(cell));
    rows.push_back(std::move(v));
  }
  return rows;
}

inline double max_abs_diff(model::YoloV2Impl& a, model::YoloV2Impl& b) {
  double d = 0;
  auto pb = b.named_parameters();
  for (const auto& kv : a.named_parameters()) d = std::max(d, (kv.value() - pb[kv.key()]).abs().max().item<double>());
  auto bb = b.named_buffers();
  for (const auto& kv : a.named_buffers())
    if (kv.value().is_floating_point()) d = std::max(d, (kv.value() - bb[kv.key()]).abs().max().item<double>());
  return d;
}

// Random BN statistics and affine parameters, so that a weights layout or BN-folding mistake
// shows up in the outputs (fresh BN layers are the identity).
inline void randomize_batchnorm(model::YoloV2Impl& m) {
  torch::NoGradGuard g;
  for (auto& bn : m.norms()) {
    if (bn.is_empty()) continue;
    bn->weight.uniform_(0.5, 1.5);
    bn->bias.uniform_(-0.2, 0.2);
    bn->running_mean.uniform_(-0.2, 0.2);
    bn->running_var.uniform_(0.5, 2.0);
  }
}

inline bool bit_identical(model::YoloV2Impl& a, model::YoloV2Impl& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  auto ba = a.named_buffers(), bb = b.named_buffers();
  for (const auto& kv : pa)
    if (!at::equal(kv.value(), pb[kv.key()])) return false;
  for (const auto& kv : ba) {
    if (kv.key().find("num_batches_tracked") != std::string::npos) continue;
    if (!at::equal(kv.value(), bb[kv.key()])) return false;
  }
  return true;
}

#ifdef YOLO2_EXE

// Starts `yolo2 ARGS...` with stdout and stderr to `log` and returns its pid.
inline pid_t spawn_yolo2(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 1);
  dup2(fd, 2);
  std::vector<char*> argv{const_cast<char*>(YOLO2_EXE)};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(YOLO2_EXE, argv.data());
  _exit(127);
}

inline void wait_for_file(const std::string& path) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!std::filesystem::exists(path) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

#endif

}  // namespace yolo2::testing
