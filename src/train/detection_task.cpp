// The detector as a Task (`yolo2 train`): VOC batches through the network and darknet's region
// loss (multi-scale, darknet augmentation), the focal gamma's schedule ("soft gamma"), and VOC mAP
// on data.test, spread over the ranks.
#include <spdlog/spdlog.h>

#include <chrono>
#include <iomanip>
#include <sstream>

#include "stream_task.hpp"
#include "yolo2/data/dataset.hpp"
#include "yolo2/error.hpp"
#include "yolo2/eval/evaluator.hpp"
#include "yolo2/eval/report.hpp"
#include "yolo2/loss/region_loss.hpp"
#include "yolo2/options.hpp"
#include "yolo2/train/run.hpp"
#include "yolo2/train/schedule.hpp"
#include "yolo2/train/tasks.hpp"

namespace yolo2::train {
namespace {

// Rank r runs the network on test images r, r + w, r + 2w, ...; the detections are gathered and
// rank 0 scores the whole split (the others get no metrics).
eval::EvalRun evaluate_sharded(const model::FusedYoloV2& net, const data::Dataset& test,
                               const eval::EvalOptions& options, const c10::Device& device, Distributed& dist) {
  const auto t0 = std::chrono::steady_clock::now();
  data::Dataset shard;
  shard.class_names = test.class_names;
  std::vector<int> global;  // shard index -> test index
  for (auto i = static_cast<std::size_t>(dist.rank()); i < test.images.size();
       i += static_cast<std::size_t>(dist.world_size())) {
    shard.images.push_back(test.images[i]);
    global.push_back(static_cast<int>(i));
  }
  std::vector<eval::Detection> local;
  if (!shard.images.empty()) local = eval::evaluate_model(net, shard, options, device).detections;
  // Rows of doubles: image index, label, score, box (exact for any realistic split).
  at::Tensor rows = at::empty({static_cast<int64_t>(local.size()), 7}, at::kDouble);
  auto* r = rows.data_ptr<double>();
  for (const auto& d : local) {
    *r++ = global[static_cast<std::size_t>(d.image)], *r++ = d.label, *r++ = d.score;
    *r++ = d.box.x1, *r++ = d.box.y1, *r++ = d.box.x2, *r++ = d.box.y2;
  }
  const at::Tensor all = dist.all_gather_rows(rows, "gathering evaluation detections").contiguous();
  eval::EvalRun run;
  if (!dist.is_main()) return run;
  const double* a = all.data_ptr<double>();
  for (int64_t k = 0; k < all.size(0); ++k, a += 7) {
    eval::Detection d;
    d.image = static_cast<int>(a[0]), d.label = static_cast<int>(a[1]), d.score = static_cast<float>(a[2]);
    d.box = {static_cast<float>(a[3]), static_cast<float>(a[4]), static_cast<float>(a[5]), static_cast<float>(a[6])};
    run.detections.push_back(d);
  }
  eval::score(run, test, options);
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  run.images_per_second = run.seconds > 0 ? static_cast<double>(test.images.size()) / run.seconds : 0;
  return run;
}

class DetectionEvaluation : public Evaluation {
 public:
  explicit DetectionEvaluation(data::Dataset test) : test_(std::move(test)) {}
  std::vector<std::string> columns(const Config& config) const override {
    std::vector<std::string> c{"map"};
    for (const auto& n : config.data.classes) c.push_back("ap_" + n);
    return c;
  }
  std::vector<std::string> plotted() const override { return {"map"}; }
  std::string plot_title(const Config& config) const override { return "test mAP (" + config.eval.metric + ")"; }
  std::string plot_file() const override { return "map.png"; }
  std::optional<std::vector<double>> run(Trainer& t) override {
    TrainerParts& p = t.parts();
    const model::FusedYoloV2 fused(*p.net);
    eval::EvalOptions options = eval_options(p.config);
    // On a GPU, in the run's precision and layout (the CPU keeps the fp32 oneDNN plan).
    options.autocast = p.precision.autocast ? p.precision.dtype : at::kFloat;
    options.channels_last = p.config.runtime.channels_last;
    // data.cache: ram keeps the test images decoded from one evaluation to the next (one process: the
    // ranks of several evaluate shards, each decoding its own).
    if (options.loader.cache_images && !p.dist) {
      if (!cache_) cache_ = std::make_shared<data::ImageCache>(test_.images.size());
      options.loader.cache = cache_;
    }
    if (p.dist) options.loader.cache_images = false;
    const eval::EvalRun r = p.dist ? evaluate_sharded(fused, test_, options, p.device, *p.dist)
                                   : eval::evaluate_model(fused, test_, options, p.device);
    if (!t.main_rank()) return std::nullopt;
    spdlog::info("evaluation at iteration {} on {} test images ({:.1f} images/s):\n{}", p.state.iteration,
                 test_.images.size(), r.images_per_second, eval::format_run_table(r, test_.class_names));
    // The latest evaluation's precision-recall curves (the TensorBoard hook logs the picture too).
    eval::save_pr_summary(r.metrics, p.folder.file("pr.png"));
    std::vector<double> row{eval::headline_map(r)};
    for (double ap : eval::per_class_ap(r)) row.push_back(ap);
    return row;
  }

 private:
  data::Dataset test_;
  std::shared_ptr<data::ImageCache> cache_;
};

class DetectionTask : public StreamTask {
 public:
  DetectionTask() = default;
  DetectionTask(data::BatchMaker make, int64_t images) : make_(std::move(make)), source_images_(images) {}

  const TaskInfo& info() const override {
    static const TaskInfo i{"train",
                            "Train a YOLOv2 detector (Ctrl-C saves a resumable checkpoint)",
                            Head::Region,
                            "mAP",
                            "eval.csv, map.png, best.ckpt",
                            ""};
    return i;
  }

  void load(Config& c, bool evaluate) override {
    train_ = c.train;
    focal_ = c.loss.focal;
    class_loss_ = c.loss.classification;
    if (make_) {
      max_batches_ = total_iterations(c.train, source_images_);
      return;
    }
    train_set_ = std::make_shared<const data::Dataset>(data::load_dataset(c.data.train, parse_options(c, true)));
    if (evaluate) test_set_ = data::load_dataset(c.data.test, parse_options(c, false));
    const std::string skipped_train = data::skipped_images_summary(*train_set_),
                      skipped_test = test_set_ ? data::skipped_images_summary(*test_set_) : std::string();
    if (!skipped_train.empty()) spdlog::warn("data (training): {}", skipped_train);
    if (!skipped_test.empty()) spdlog::warn("data (test): {}", skipped_test);
    spdlog::info("data: {} training images ({} objects), {} test images", train_set_->images.size(),
                 data::dataset_stats(*train_set_).objects, test_set_ ? test_set_->images.size() : 0);
    max_batches_ = total_iterations(c.train, train_images());
  }
  int64_t train_images() const override {
    return make_ ? source_images_ : static_cast<int64_t>(train_set_->images.size());
  }
  int64_t max_batches() const override { return max_batches_; }
  double learning_rate(int64_t update) const override { return train::learning_rate(train_, update, max_batches_); }

  void prepare(const TrainerParts& p) override {
    loss_ = loss_options(p);
    loss_.host_scalars = false;  // the trainer reads RegionLossResult::scalars when it needs them
    loader_ = stream_options(p, loader_options(p.config, true));
    mini_ = p.config.train.batch / p.config.train.subdivisions;
  }
  std::unique_ptr<Evaluation> evaluation() override {
    if (!test_set_) return nullptr;
    auto e = std::make_unique<DetectionEvaluation>(std::move(*test_set_));
    test_set_.reset();
    return e;
  }

  const ScalarSpecs& scalars() const override { return loss::region_loss_scalars(); }
  const std::vector<std::string>& settings() const override {
    static const std::vector<std::string> s{"gamma"};
    return s;
  }
  // The focal gamma at the fraction of training done before this step (schedule.hpp). Cross-entropy
  // has none: it is reported as 0 (softmax focal loss with gamma 0 is cross-entropy), not as the
  // unused loss.focal.gamma.
  std::vector<double> begin_step(const Trainer& t) override {
    gamma_ = focal_gamma(focal_, static_cast<double>(t.parts().state.iteration) / static_cast<double>(max_batches_));
    return {class_loss_ == ClassLoss::CrossEntropy ? 0.0 : gamma_};
  }

  void open(const Trainer& t) override {
    open_stream(make_ ? std::make_unique<data::Loader>(make_, source_images_, loader_)
                      : std::make_unique<data::Loader>(train_set_, loader_),
                t);
  }

  MicroResult micro_step(Trainer& t, int s) override {
    const data::Batch batch = next_batch();
    const at::Tensor raw = forward(t, batch);
    const int64_t seen = t.parts().state.images_seen + static_cast<int64_t>(s + 1) * mini_;
    loss::RegionLossResult r = loss::region_loss(raw, batch.boxes, batch.labels, batch.counts, seen, gamma_, loss_);
    return {r.total, std::move(r.scalars), r.count, batch.size};
  }

 private:
  // The region loss's options; focal alpha `auto` from the training set's class frequencies.
  loss::RegionLossOptions loss_options(const TrainerParts& p) const {
    loss::RegionLossOptions o = region_loss_options(p.config);
    if (p.config.loss.focal.alpha.kind == AlphaSpec::Kind::Auto && train_set_) {
      const auto a = loss::inverse_frequency_alpha(data::dataset_stats(*train_set_).objects_per_class);
      o.alpha = at::tensor(a, at::kFloat);
      std::ostringstream os;
      for (std::size_t c = 0; c < a.size(); ++c)
        os << (c ? ", " : "") << p.config.data.classes[c] << " " << std::setprecision(3) << a[c];
      spdlog::info("focal alpha (auto, inverse class frequency, mean 1): {}", os.str());
    }
    if (o.alpha.defined()) o.alpha = o.alpha.to(p.device);
    return o;
  }

  data::BatchMaker make_;  // the bench's stream instead of data.train
  int64_t source_images_ = 0;
  std::shared_ptr<const data::Dataset> train_set_;
  std::optional<data::Dataset> test_set_;
  TrainConfig train_;
  FocalConfig focal_;
  ClassLoss class_loss_ = ClassLoss::CrossEntropy;
  int64_t max_batches_ = 0;
  loss::RegionLossOptions loss_;
  data::LoaderOptions loader_;
  int mini_ = 1;
  double gamma_ = 0;
};

}  // namespace

std::unique_ptr<Task> detection_task() { return std::make_unique<DetectionTask>(); }

std::unique_ptr<Task> detection_task_on(data::BatchMaker make, int64_t images) {
  return std::make_unique<DetectionTask>(std::move(make), images);
}

}  // namespace yolo2::train
