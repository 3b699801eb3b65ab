// The classifier's predictions and its top-1 / top-5 accuracy (`yolo2 pretrain`).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>

#include "yolo2/data/image_folder.hpp"
#include "yolo2/model/yolov2.hpp"

namespace yolo2::eval {

// Class probabilities [B, C] (softmax of the logits) of a classifier network in evaluation mode, for
// images [B, 3, H, W] RGB in [0, 1] on any device; computed without gradients, returned on the CPU.
at::Tensor class_probabilities(model::YoloV2Impl& net, const at::Tensor& images, const c10::Device& device);

struct ClassifyCounts {
  int64_t images = 0;
  int64_t top1 = 0;  // the true class is the most probable one
  int64_t top5 = 0;  // the true class is among the five most probable ones (all classes when fewer)
  double top1_rate() const { return images ? static_cast<double>(top1) / static_cast<double>(images) : 0.0; }
  double top5_rate() const { return images ? static_cast<double>(top5) / static_cast<double>(images) : 0.0; }
};

// Counts over the images of `dataset`, centre-cropped to `size` (darknet's validate_classifier),
// `batch` at a time; with shard_count > 1, only images shard_rank, shard_rank + shard_count, ...
ClassifyCounts count_correct(model::YoloV2Impl& net, const data::ImageFolderDataset& dataset, int size, int batch,
                             const c10::Device& device, int shard_rank = 0, int shard_count = 1);

}  // namespace yolo2::eval
