// The Darknet19 classifier as a Task (`yolo2 pretrain`): ImageFolder batches through the network
// and softmax cross-entropy (darknet's [softmax] layer: delta = truth - p, the gradient of the
// cross-entropy), with darknet's two stages (darknet19.cfg at the input size, then darknet19_448.cfg's
// fine-tune at a larger one) as one run, top-1 / top-5 on data.test, and at the end the classifier
// in darknet's format with the detector prefix that train.init_weights takes.
#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "stream_task.hpp"
#include "yolo2/data/image_folder.hpp"
#include "yolo2/eval/classify.hpp"
#include "yolo2/io/darknet.hpp"
#include "yolo2/options.hpp"
#include "yolo2/train/run.hpp"
#include "yolo2/train/schedule.hpp"
#include "yolo2/train/tasks.hpp"

namespace yolo2::train {
namespace {

class ClassifierEvaluation : public Evaluation {
 public:
  explicit ClassifierEvaluation(data::ImageFolderDataset val) : val_(std::move(val)) {}
  std::vector<std::string> columns(const Config&) const override { return {"top1", "top5"}; }
  std::vector<std::string> plotted() const override { return {"top1", "top5"}; }
  std::string plot_title(const Config&) const override { return "val accuracy"; }
  std::string plot_file() const override { return "accuracy.png"; }
  std::optional<std::vector<double>> run(Trainer& t) override {
    TrainerParts& p = t.parts();
    const auto t0 = std::chrono::steady_clock::now();
    // The size the network trains at when evaluated (the fine-tune stage's after it started).
    const int size = classifier_input_size(p.config, t.max_batches() - p.state.iteration);
    const int rank = p.dist ? p.dist->rank() : 0, world = p.dist ? p.dist->world_size() : 1;
    const eval::ClassifyCounts c = eval::count_correct(*p.net, val_, size, p.config.eval.batch, p.device, rank, world);
    at::Tensor sums = at::tensor(
        std::vector<double>{static_cast<double>(c.images), static_cast<double>(c.top1), static_cast<double>(c.top5)},
        at::kDouble);
    if (p.dist) p.dist->all_reduce_sum({sums}, "gathering top-1 / top-5 counts");
    if (!t.main_rank()) return std::nullopt;
    const double n = sums[0].item<double>(), top1 = sums[1].item<double>() / n, top5 = sums[2].item<double>() / n;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    spdlog::info("evaluation at iteration {} on {} val images at {} px ({:.1f} images/s): top-1 {:.4f}, top-5 {:.4f}",
                 p.state.iteration, static_cast<int64_t>(n), size, n / std::max(seconds, 1e-9), top1, top5);
    return std::vector<double>{top1, top5};
  }

 private:
  data::ImageFolderDataset val_;
};

class ClassificationTask : public StreamTask {
 public:
  const TaskInfo& info() const override {
    static const TaskInfo i{"pretrain",
                            "Train the Darknet19 classifier on an ImageFolder dataset (model.head: classifier), for "
                            "the detector's train.init_weights",
                            Head::Classifier,
                            "top-1",
                            "eval.csv, accuracy.png, best.ckpt",
                            "classifier.cfg, classifier.weights, backbone.conv.N"};
    return i;
  }

  void load(Config& c, bool evaluate) override {
    train_set_ = std::make_shared<const data::ImageFolderDataset>(
        data::load_image_folder(c.data.train, c.data.classes, "data.train", true));
    // data.classes empty: the class folders, sorted (torchvision's ImageFolder); stored in the run's
    // config.yaml and checkpoints from here on.
    if (c.data.classes.empty()) c.data.classes = train_set_->class_names;
    if (evaluate) val_set_ = data::load_image_folder(c.data.test, c.data.classes, "data.test", false);
    spdlog::info("data: {} classes, {} training images, {} val images", c.data.classes.size(), train_set_->size(),
                 val_set_ ? val_set_->size() : 0);
    main_stage_ = total_iterations(c.train, train_images());
    finetune_ = c.classify.finetune_batches;
    // darknet's poly (or the configured policy) over the main stage, then the fine-tune stage's own
    // poly from classify.finetune_lr, without burn-in.
    stage1_ = stage2_ = c.train;
    stage2_.lr = c.classify.finetune_lr, stage2_.burn_in = 0, stage2_.policy = LrPolicy::Poly;
  }
  int64_t train_images() const override { return static_cast<int64_t>(train_set_->size()); }
  int64_t max_batches() const override { return main_stage_ + finetune_; }
  double learning_rate(int64_t update) const override {
    return update <= main_stage_ ? train::learning_rate(stage1_, update, main_stage_)
                                 : train::learning_rate(stage2_, update - main_stage_, finetune_);
  }

  void prepare(const TrainerParts& p) override {
    data::LoaderOptions o = loader_options(p.config, true);
    const int sub = p.config.train.subdivisions;
    const int64_t updates = max_batches();
    // Micro-batch b belongs to update b / sub + 1 (1-based).
    o.size_for_batch = [config = p.config, sub, updates](int64_t b) {
      return classifier_input_size(config, updates - (b / sub + 1));
    };
    crop_ = crop_options(p.config.classify, false);
    finetune_crop_ = crop_options(p.config.classify, true);
    finetune_from_ = main_stage_ * sub;  // the first micro-batch of the fine-tune stage
    loader_ = stream_options(p, o);
  }
  std::unique_ptr<Evaluation> evaluation() override {
    if (!val_set_) return nullptr;
    auto e = std::make_unique<ClassifierEvaluation>(std::move(*val_set_));
    val_set_.reset();
    return e;
  }

  // metrics.csv's columns: the cross-entropy per image, then the training batch's top-1 and the
  // mean probability of the true class (darknet's classifier prints the loss only).
  const ScalarSpecs& scalars() const override {
    static const ScalarSpecs s{
        {"class", ScalarKind::Term}, {"top1", ScalarKind::CountMean}, {"avg_class", ScalarKind::CountMean}};
    return s;
  }

  void open(const Trainer& t) override {
    auto ds = train_set_;
    const data::LoaderOptions o = loader_;
    const data::CropOptions crop = crop_, ft = finetune_crop_;
    const int64_t from = finetune_from_;
    open_stream(
        std::make_unique<data::Loader>(
            [ds, o, crop, ft, from](int64_t k) { return data::make_classify_batch(*ds, o, k < from ? crop : ft, k); },
            static_cast<int64_t>(ds->size()), o),
        t);
  }

  MicroResult micro_step(Trainer& t, int) override {
    const data::Batch batch = next_batch();
    const c10::Device device = t.parts().device;
    const at::Tensor logits = forward(t, batch).flatten(1);
    const at::Tensor labels = batch.labels.to(device, /*non_blocking=*/true);
    const at::Tensor logp = at::log_softmax(logits, 1);
    const at::Tensor loss = at::nll_loss(logp, labels);  // mean over the micro-batch: per image
    const at::Tensor d = logp.detach();
    const at::Tensor top1 = d.argmax(1).eq(labels).to(at::kDouble).mean();
    const at::Tensor p_true = d.gather(1, labels.unsqueeze(1)).exp().mean();
    MicroResult r;
    r.total = loss;
    r.values = loss::named_scalars(scalars(), {{"class", loss.detach()}, {"top1", top1}, {"avg_class", p_true}});
    r.count = labels.size(0);
    r.size = batch.size;
    return r;
  }

  // RUN/classifier.cfg + .weights (darknet's classifier predict, OpenCV's DNN) and the detector
  // prefix RUN/backbone.conv.<N>, from the final weights (as darknet's `partial`, with seen = 0). Not
  // darknet's own file names (darknet19.weights), so that yolo2 never takes a user's darknet file
  // for its own.
  void finish(Trainer& t) override {
    if (!t.main_rank()) return;
    TrainerParts& p = t.parts();
    const std::string base = p.folder.file("classifier");
    io::export_darknet(*p.net, p.config, base, static_cast<uint64_t>(p.state.images_seen));
    const int n = p.config.classify.prefix_layers;
    const std::string prefix = p.folder.file("backbone.conv." + std::to_string(n));
    io::save_darknet_weights(*p.net, prefix, 0, n);
    spdlog::info("pretrain: wrote {}.cfg, {}.weights and the detector prefix {} (train.init_weights)", base, base,
                 prefix);
  }

 private:
  std::shared_ptr<const data::ImageFolderDataset> train_set_;
  std::optional<data::ImageFolderDataset> val_set_;
  int64_t main_stage_ = 0, finetune_ = 0;
  TrainConfig stage1_, stage2_;
  data::LoaderOptions loader_;
  data::CropOptions crop_, finetune_crop_;
  int64_t finetune_from_ = 0;
};

}  // namespace

std::unique_ptr<Task> classification_task() { return std::make_unique<ClassificationTask>(); }

}  // namespace yolo2::train
