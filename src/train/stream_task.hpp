// What both tasks share: the training stream (a Loader opened by the task, fed to the run's device
// one batch ahead, from the state's position, this rank's shard) and the network's forward pass on a
// batch in the run's memory format and precision.
#pragma once

#include <memory>

#include "yolo2/data/loader.hpp"
#include "yolo2/train/task.hpp"
#include "yolo2/train/trainer.hpp"

namespace yolo2::train {

class StreamTask : public Task {
 public:
  void skip_micro_batch() override { feed_->next(); }

 protected:
  void open_stream(std::unique_ptr<data::Loader> loader, const Trainer& t);
  data::Batch next_batch();
  // The network's output on `batch` (fp32 whatever the network ran in); tells the trainer's probe.
  static at::Tensor forward(Trainer& t, const data::Batch& batch);
  std::unique_ptr<data::DeviceFeed> feed_;
};

// The training stream from the state's position on, for this rank's shard: `o` with
// start_batch, num_batches and (unless set) the multi-scale size of each micro-batch filled in.
data::LoaderOptions stream_options(const TrainerParts& p, data::LoaderOptions o);

}  // namespace yolo2::train
