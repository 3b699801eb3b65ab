#include "yolo2/eval/classify.hpp"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <algorithm>

namespace yolo2::eval {

at::Tensor class_probabilities(model::YoloV2Impl& net, const at::Tensor& images, const c10::Device& device) {
  torch::NoGradGuard no_grad;
  const at::Tensor logits = net.forward(images.to(device)).flatten(1);
  return at::softmax(logits, 1).to(at::kCPU);
}

ClassifyCounts count_correct(model::YoloV2Impl& net, const data::ImageFolderDataset& dataset, int size, int batch,
                             const c10::Device& device, int shard_rank, int shard_count) {
  data::ImageFolderDataset shard;
  shard.class_names = dataset.class_names;
  for (auto i = static_cast<std::size_t>(shard_rank); i < dataset.size(); i += static_cast<std::size_t>(shard_count)) {
    shard.paths.push_back(dataset.paths[i]);
    shard.labels.push_back(dataset.labels[i]);
  }
  ClassifyCounts counts;
  if (shard.size() == 0) return counts;
  data::LoaderOptions opt;
  opt.train = false;
  opt.batch_size = batch;
  opt.input_size = size;
  const int64_t batches = data::batches_per_epoch(static_cast<int64_t>(shard.size()), batch, false);
  const int64_t k = std::min<int64_t>(5, static_cast<int64_t>(dataset.class_names.size()));
  for (int64_t b = 0; b < batches; ++b) {
    const data::Batch x = data::make_classify_batch(shard, opt, {}, b);
    const at::Tensor top = std::get<1>(at::topk(class_probabilities(net, x.images, device), k, 1));
    const at::Tensor hit = top.eq(x.labels.unsqueeze(1));
    counts.images += x.labels.size(0);
    counts.top1 += hit.select(1, 0).sum().item<int64_t>();
    counts.top5 += hit.any(1).sum().item<int64_t>();
  }
  return counts;
}

}  // namespace yolo2::eval
