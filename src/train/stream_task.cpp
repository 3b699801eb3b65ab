#include "stream_task.hpp"

#include <ATen/ATen.h>

#include "yolo2/error.hpp"
#include "yolo2/runtime/precision.hpp"
#include "yolo2/train/schedule.hpp"

namespace yolo2::train {

void StreamTask::open_stream(std::unique_ptr<data::Loader> loader, const Trainer& t) {
  feed_ = std::make_unique<data::DeviceFeed>(std::move(loader), t.parts().device);
}

data::Batch StreamTask::next_batch() {
  std::optional<data::Batch> batch = feed_->next();
  if (!batch) throw Error("the data loader ended early (internal error)");
  return std::move(*batch);
}

at::Tensor StreamTask::forward(Trainer& t, const data::Batch& batch) {
  TrainerParts& p = t.parts();
  const auto format = p.config.runtime.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  const at::Tensor x = data::network_input(batch, p.device, format);
  at::Tensor out;
  {
    runtime::AutocastScope autocast(p.precision, p.device.type());
    out = p.net->forward(x);
  }
  t.phase(Trainer::Phase::Forward);
  // The loss is computed in fp32 whatever the network ran in (runtime.precision).
  return out.to(at::kFloat);
}

data::LoaderOptions stream_options(const TrainerParts& p, data::LoaderOptions o) {
  const int sub = p.config.train.subdivisions;
  const int64_t max_batches = p.task->max_batches();
  if (p.dist) o.shard_rank = p.dist->rank(), o.shard_count = p.dist->world_size();
  o.pin_memory = p.device.is_cuda();
  o.device_side = p.device.is_cuda();  // bytes to the GPU; float, layout and colour there
  const DataConfig data_cfg = p.config.data;
  const uint64_t seed = p.config.runtime.seed;
  if (!o.size_for_batch)
    o.size_for_batch = [data_cfg, max_batches, sub, seed](int64_t b) {
      return multiscale_size(data_cfg, b / sub, max_batches, seed);
    };
  o.start_batch = p.state.iteration * sub;
  o.num_batches = std::max<int64_t>(0, (max_batches - p.state.iteration) * sub);
  return o;
}

}  // namespace yolo2::train
