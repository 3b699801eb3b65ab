// The detector as a TrainTask: VOC batches through the network and darknet's region loss (and the
// StreamTask base both tasks share).
#include <ATen/ATen.h>

#include "tasks.hpp"
#include "yolo2/error.hpp"

namespace yolo2::train {

void StreamTask::open_stream(std::unique_ptr<data::Loader> loader, const Trainer& t) {
  feed_ = std::make_unique<data::DeviceFeed>(std::move(loader), t.parts().device);
}

data::Batch StreamTask::next_batch() {
  std::optional<data::Batch> batch = feed_->next();
  if (!batch) throw Error("the data loader ended early (internal error)");
  return std::move(*batch);
}

at::Tensor StreamTask::forward(TrainerParts& p, const data::Batch& batch) {
  const auto format = p.config.runtime.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  const at::Tensor x = data::network_input(batch, p.device, format);
  AutocastScope autocast(p.precision, p.device.type());
  // The loss is computed in fp32 whatever the network ran in (runtime.precision).
  return p.net->forward(x).to(at::kFloat);
}

namespace {

class DetectionTask : public StreamTask {
 public:
  DetectionTask(std::shared_ptr<const data::VocDataset> train_set, data::LoaderOptions loader,
                loss::RegionLossOptions loss)
      : train_set_(std::move(train_set)), loader_options_(std::move(loader)), loss_(std::move(loss)) {
    loss_.host_scalars = false;  // the trainer reads RegionLossResult::scalars when it needs them
  }

  // metrics.csv's columns: the region loss's terms per image, then darknet's printed diagnostics.
  const std::vector<ScalarSpec>& scalars() const override {
    static const std::vector<ScalarSpec> s{
        {"coord", ScalarKind::Term},          {"object", ScalarKind::Term},        {"noobject", ScalarKind::Term},
        {"class", ScalarKind::Term},          {"warmup", ScalarKind::Term},        {"avg_iou", ScalarKind::CountMean},
        {"avg_class", ScalarKind::CountMean}, {"avg_obj", ScalarKind::CountMean},  {"avg_noobj", ScalarKind::Mean},
        {"recall50", ScalarKind::CountMean},  {"recall75", ScalarKind::CountMean},
    };
    return s;
  }
  int64_t train_images() const override { return static_cast<int64_t>(train_set_->images.size()); }
  bool uses_gamma() const override { return true; }
  void open(const Trainer& t) override { open_stream(std::make_unique<data::Loader>(train_set_, loader_options_), t); }

  MicroResult micro_step(Trainer& t, int s, double gamma) override {
    const data::Batch batch = next_batch();
    TrainerParts& p = t.parts();
    const at::Tensor raw = forward(p, batch);
    const int mini = p.config.train.batch / p.config.train.subdivisions;
    const int64_t seen = p.state.images_seen + static_cast<int64_t>(s + 1) * mini;
    const loss::RegionLossResult r =
        loss::region_loss(raw, batch.boxes, batch.labels, batch.counts, seen, gamma, loss_);
    return {r.total, r.scalars, r.count, batch.size};  // scalars in scalars() order
  }

 private:
  std::shared_ptr<const data::VocDataset> train_set_;
  data::LoaderOptions loader_options_;
  loss::RegionLossOptions loss_;
};

}  // namespace

std::unique_ptr<TrainTask> detection_task(std::shared_ptr<const data::VocDataset> train_set, data::LoaderOptions loader,
                                          loss::RegionLossOptions loss) {
  return std::make_unique<DetectionTask>(std::move(train_set), std::move(loader), std::move(loss));
}

}  // namespace yolo2::train
