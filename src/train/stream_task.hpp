// The two TrainTasks (trainer.hpp) and the builder that run_training and run_pretraining share.
#pragma once

#include <functional>
#include <memory>

#include "yolo2/data/image_folder.hpp"
#include "yolo2/data/loader.hpp"
#include "yolo2/data/voc.hpp"
#include "yolo2/loss/region_loss.hpp"
#include "yolo2/train/hooks.hpp"
#include "yolo2/train/trainer.hpp"

namespace yolo2::train {

// What both tasks share: the training stream (a Loader opened by the task, fed to the run's device
// one batch ahead) and the network's forward pass on a batch in the run's memory format.
class StreamTask : public TrainTask {
 public:
  void skip_micro_batch() override { feed_->next(); }

 protected:
  void open_stream(std::unique_ptr<data::Loader> loader, const Trainer& t);
  data::Batch next_batch();
  static at::Tensor forward(TrainerParts& p, const data::Batch& batch);
  std::unique_ptr<data::DeviceFeed> feed_;
};

// The detector: region loss on VOC batches (multi-scale, darknet augmentation).
std::unique_ptr<TrainTask> detection_task(std::shared_ptr<const data::VocDataset> train_set, data::LoaderOptions loader,
                                          loss::RegionLossOptions loss);

// The classifier: softmax cross-entropy on ImageFolder batches (darknet's classifier augmentation).
// Micro-batches from `finetune_from` on (the fine-tune stage) crop with `finetune_crop`.
std::unique_ptr<TrainTask> classification_task(std::shared_ptr<const data::ImageFolderDataset> train_set,
                                               data::LoaderOptions loader, data::CropOptions crop,
                                               data::CropOptions finetune_crop, int64_t finetune_from);

// What differs between `train` and `pretrain`. load_data runs before the network is built (it may
// settle data.classes and sets max_batches); make_task once the state is known (resume position)
// and returns the evaluation hook.
struct TaskRecipe {
  Head head = Head::Region;
  std::function<void(TrainerParts&, bool evaluate)> load_data;
  std::function<std::unique_ptr<Hook>(TrainerParts&)> make_task;
  std::function<void(Trainer&, TrainSummary&)> finish;  // after a finished run (not a stop); may be unset
};

// The training stream from the state's position on, for this rank's shard: `o` with
// start_batch, num_batches and (unless set) the multi-scale size of each micro-batch filled in.
data::LoaderOptions stream_options(const TrainerParts& p, data::LoaderOptions o);

TrainSummary run_recipe(Config config, const TrainOptions& options, const TaskRecipe& recipe);

}  // namespace yolo2::train
