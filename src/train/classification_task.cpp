// The Darknet19 classifier as a TrainTask: ImageFolder batches through the network and softmax
// cross-entropy (darknet's [softmax] layer: delta = truth - p, the gradient of the cross-entropy).
#include <ATen/ATen.h>

#include "tasks.hpp"

namespace yolo2::train {
namespace {

class ClassificationTask : public StreamTask {
 public:
  ClassificationTask(std::shared_ptr<const data::ImageFolderDataset> train_set, data::LoaderOptions loader,
                     data::CropOptions crop, data::CropOptions finetune_crop, int64_t finetune_from)
      : train_set_(std::move(train_set)),
        loader_options_(std::move(loader)),
        crop_(crop),
        finetune_crop_(finetune_crop),
        finetune_from_(finetune_from) {}

  // metrics.csv's columns: the cross-entropy per image, then the training batch's top-1 and the
  // mean probability of the true class (darknet's classifier prints the loss only).
  const std::vector<ScalarSpec>& scalars() const override {
    static const std::vector<ScalarSpec> s{
        {"class", ScalarKind::Term}, {"top1", ScalarKind::CountMean}, {"avg_class", ScalarKind::CountMean}};
    return s;
  }
  int64_t train_images() const override { return static_cast<int64_t>(train_set_->size()); }
  bool uses_gamma() const override { return false; }
  void open(const Trainer& t) override {
    auto ds = train_set_;
    const data::LoaderOptions o = loader_options_;
    const data::CropOptions crop = crop_, ft = finetune_crop_;
    const int64_t from = finetune_from_;
    open_stream(
        std::make_unique<data::Loader>(
            [ds, o, crop, ft, from](int64_t k) { return data::make_classify_batch(*ds, o, k < from ? crop : ft, k); },
            static_cast<int64_t>(ds->size()), o),
        t);
  }

  MicroResult micro_step(Trainer& t, int, double) override {
    const data::Batch batch = next_batch();
    TrainerParts& p = t.parts();
    const at::Tensor logits = forward(p, batch).flatten(1);
    const at::Tensor labels = batch.labels.to(p.device, /*non_blocking=*/true);
    const at::Tensor logp = at::log_softmax(logits.to(at::kFloat), 1);
    const at::Tensor loss = at::nll_loss(logp, labels);  // mean over the micro-batch: per image
    MicroResult r;
    r.total = loss;
    const at::Tensor d = logp.detach();
    const at::Tensor top1 = d.argmax(1).eq(labels).to(at::kDouble).mean();
    const at::Tensor p_true = d.gather(1, labels.unsqueeze(1)).exp().mean().to(at::kDouble);
    r.values = at::stack({loss.detach().to(at::kDouble), top1, p_true});  // where they are: no transfer
    r.count = labels.size(0);
    r.size = batch.size;
    return r;
  }

 private:
  std::shared_ptr<const data::ImageFolderDataset> train_set_;
  data::LoaderOptions loader_options_;
  data::CropOptions crop_, finetune_crop_;
  int64_t finetune_from_;
};

}  // namespace

std::unique_ptr<TrainTask> classification_task(std::shared_ptr<const data::ImageFolderDataset> train_set,
                                               data::LoaderOptions loader, data::CropOptions crop,
                                               data::CropOptions finetune_crop, int64_t finetune_from) {
  return std::make_unique<ClassificationTask>(std::move(train_set), std::move(loader), crop, finetune_crop,
                                              finetune_from);
}

}  // namespace yolo2::train
