// What the training engine (trainer.hpp) trains: a Task owns everything that is particular to one
// kind of training — its data and stream, its length and learning-rate curve, its loss and the
// loss's named scalars, the schedule of its loss hyper-parameters (the detector's focal gamma), its
// evaluation and what it writes at the end. The engine knows none of these by name. A task is one
// file (detection_task.cpp, classification_task.cpp) plus one line in tasks.cpp's registry.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "yolo2/config.hpp"
#include "yolo2/loss/scalars.hpp"

namespace yolo2::train {

class Trainer;
struct TrainerParts;
using loss::ScalarKind;
using loss::ScalarSpec;
using loss::ScalarSpecs;

// How the command line and the run folder speak of a task.
struct TaskInfo {
  std::string verb;          // `yolo2 <verb>`
  std::string description;   // the verb's help line
  Head head = Head::Region;  // the model.head it trains (another is refused, naming this verb)
  std::string metric;        // its evaluation's first score in words ("mAP", "top-1")
  std::string eval_files;    // what an evaluated run adds to the run folder ("eval.csv, map.png, best.ckpt")
  std::string final_files;   // what a finished run adds ("" if nothing)
};

// One micro-batch's forward pass and loss.
struct MicroResult {
  at::Tensor total;           // the loss to back-propagate
  loss::NamedScalars values;  // the task's scalars() by name, where they are (no transfer)
  int64_t count = 0;          // items behind the CountMean values (known on the host)
  int size = 0;               // input side of the batch
};

// What the evaluation hook scores: eval.csv's columns after iteration and epoch, the first of which
// decides best.ckpt.
class Evaluation {
 public:
  virtual ~Evaluation() = default;
  virtual std::vector<std::string> columns(const Config& config) const = 0;
  virtual std::vector<std::string> plotted() const = 0;  // columns drawn in the plot
  virtual std::string plot_title(const Config& config) const = 0;
  virtual std::string plot_file() const = 0;
  // Runs on every rank (the network is in evaluation mode); the scores, in columns() order, on the
  // main rank only.
  virtual std::optional<std::vector<double>> run(Trainer& t) = 0;
};

class Task {
 public:
  virtual ~Task() = default;
  virtual const TaskInfo& info() const = 0;

  // Before the network is built: reads the training data (and with `evaluate` the test data); may
  // settle what the config leaves open (data.classes from an ImageFolder's folders).
  virtual void load(Config& config, bool evaluate) = 0;
  virtual int64_t train_images() const = 0;
  virtual int64_t max_batches() const = 0;  // the run's length in optimizer steps
  // The learning rate of update `update` (counted from 1; schedule.hpp).
  virtual double learning_rate(int64_t update) const = 0;
  // Once the network, the optimizer and the state (a resumed run's position) are there: the loss and
  // the stream's options. Then evaluation() gives the scorer of the evaluation hook (null: none).
  virtual void prepare(const TrainerParts& parts) = 0;
  virtual std::unique_ptr<Evaluation> evaluation() = 0;

  // metrics.csv's columns after `loss`, the progress line's terms and diagnostics.
  virtual const ScalarSpecs& scalars() const = 0;
  // The loss's hyper-parameters that follow a schedule (metrics.csv's columns after `lr`, and the
  // progress line's), and their values for the step about to be made (begin_step, before its
  // micro-batches).
  virtual const std::vector<std::string>& settings() const;
  virtual std::vector<double> begin_step(const Trainer& t);

  // Opens the stream at the state's position (called once the hooks' before_train have run).
  virtual void open(const Trainer& t) = 0;
  // The next micro-batch (the s-th of its step): forward and loss.
  virtual MicroResult micro_step(Trainer& t, int s) = 0;
  virtual void skip_micro_batch() = 0;  // keeps the stream aligned when a step is abandoned
  // After a run that reached its last iteration (not a stop), on every rank.
  virtual void finish(Trainer&) {}
};

}  // namespace yolo2::train
