// Periodic and final evaluation during training, spread over the ranks, and the best checkpoint.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>

#include "csv_table.hpp"
#include "yolo2/eval/classify.hpp"
#include "yolo2/options.hpp"
#include "yolo2/train/hooks.hpp"
#include "yolo2/train/rng_state.hpp"
#include "yolo2/util/plot.hpp"

namespace yolo2::train {
namespace {

// Rank r runs the network on test images r, r + w, r + 2w, ...; the detections are gathered and
// rank 0 scores the whole split (the others get no metrics).
eval::EvalRun evaluate_sharded(const model::FusedYoloV2& net, const data::VocDataset& test,
                               const eval::EvalOptions& options, const c10::Device& device, Distributed& dist) {
  const auto t0 = std::chrono::steady_clock::now();
  data::VocDataset shard;
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
  run.metrics = eval::evaluate_voc(eval::ground_truth(test), run.detections, test.class_names, options.voc);
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  run.images_per_second = run.seconds > 0 ? static_cast<double>(test.images.size()) / run.seconds : 0;
  return run;
}

// What an evaluation hook scores: the detector's VOC mAP or the classifier's top-1 / top-5.
class Evaluation {
 public:
  virtual ~Evaluation() = default;
  virtual std::vector<std::string> columns(const Config& config) const = 0;  // eval.csv after iteration, epoch
  virtual std::vector<std::string> plotted() const = 0;                      // columns drawn in the plot
  virtual const char* metric() const = 0;                                    // the first column, in words
  virtual const char* plot_file() const = 0;
  // Runs on every rank (the network is in evaluation mode); the scores, in columns() order, on the
  // main rank only.
  virtual std::optional<std::vector<double>> run(Trainer& t) = 0;
};

class DetectionEvaluation : public Evaluation {
 public:
  explicit DetectionEvaluation(data::VocDataset test) : test_(std::move(test)) {}
  std::vector<std::string> columns(const Config& config) const override {
    std::vector<std::string> c{"map"};
    for (const auto& n : config.data.classes) c.push_back("ap_" + n);
    return c;
  }
  std::vector<std::string> plotted() const override { return {"map"}; }
  const char* metric() const override { return "mAP"; }
  const char* plot_file() const override { return "map.png"; }
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
                 test_.images.size(), r.images_per_second, eval::format_map_table(r.metrics));
    std::vector<double> row{r.metrics.map};
    for (const auto& c : r.metrics.per_class) row.push_back(c.ap);
    return row;
  }

 private:
  data::VocDataset test_;
  std::shared_ptr<data::ImageCache> cache_;
};

class ClassifierEvaluation : public Evaluation {
 public:
  explicit ClassifierEvaluation(data::ImageFolderDataset val) : val_(std::move(val)) {}
  std::vector<std::string> columns(const Config&) const override { return {"top1", "top5"}; }
  std::vector<std::string> plotted() const override { return {"top1", "top5"}; }
  const char* metric() const override { return "top-1"; }
  const char* plot_file() const override { return "accuracy.png"; }
  std::optional<std::vector<double>> run(Trainer& t) override {
    TrainerParts& p = t.parts();
    const auto t0 = std::chrono::steady_clock::now();
    // The size the network trains at when evaluated (the fine-tune stage's after it started).
    const bool finetuned = p.config.classify.finetune_batches > 0 &&
                           p.state.iteration > p.max_batches - p.config.classify.finetune_batches;
    const int size = finetuned ? p.config.classify.finetune_size : p.config.data.input_size;
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

class EvaluationHook : public Hook {
 public:
  // A null evaluation (--no-eval) keeps the hook's extra last.ckpt saves and scores nothing.
  explicit EvaluationHook(std::unique_ptr<Evaluation> e) : eval_(std::move(e)) {}
  void before_train(Trainer& t) override {
    if (!eval_) return;
    for (const auto& n : eval_->columns(t.config())) table_.header.push_back(n);
    if (t.state().iteration > 0) table_.load(t.parts().folder.file("eval.csv"), t.state().iteration);
    if (!table_.rows.empty()) last_evaluated_ = static_cast<int64_t>(table_.rows.back()[0]);
    // A run stopped at an evaluation iteration before its evaluation ran (the stop is decided in the
    // same step, before this hook) evaluates first when resumed, so that eval.csv holds every row an
    // uninterrupted run holds. Rank 0's eval.csv decides for every rank (the others may not see it).
    const int every = t.config().eval.every;
    const int64_t it = t.state().iteration;
    bool missed = t.main_rank() && it > 0 && every > 0 && it % every == 0 && !t.at_end() && last_evaluated_ != it;
    if (Distributed* dist = t.parts().dist.get()) {
      at::Tensor flag = at::full({1}, missed ? 1.0 : 0.0, at::kDouble);
      dist->all_reduce_sum({flag}, "agreeing on a missed evaluation");
      missed = flag.item<double>() > 0;
    }
    if (!missed) return;
    spdlog::info("resume: iteration {} was stopped before its evaluation; evaluating now", it);
    evaluate(t);
    t.save_last();
  }
  void after_step(Trainer& t) override {
    const int every = t.config().eval.every;
    if (t.at_end() || t.stopping() || every <= 0 || t.state().iteration % every != 0) return;
    evaluate(t);
    t.save_last();  // keeps best_map in last.ckpt
  }
  void after_train(Trainer& t) override {
    if (t.summary().interrupted || !t.at_end() || last_evaluated_ == t.state().iteration) return;
    evaluate(t);
    t.save_last();
  }

 private:
  void evaluate(Trainer& t) {
    TrainerParts& p = t.parts();
    if (!eval_) return;
    t.read_scalars();  // deferred scalars: a non-finite loss stops the run before best.ckpt is written
    if (p.dist) p.dist->sync_buffers(*p.net);  // every rank evaluates with rank 0's batch-norm statistics
    p.net->eval();
    const std::optional<std::vector<double>> scores = eval_->run(t);
    t.set_train_mode();
    last_evaluated_ = p.state.iteration;
    if (!scores) return;
    record(t, *scores);
    t.notify_eval();
  }

  void record(Trainer& t, const std::vector<double>& scores) {
    TrainState& st = t.state();
    const double m = scores.front();
    std::vector<double> row{static_cast<double>(st.iteration), t.epoch()};
    row.insert(row.end(), scores.begin(), scores.end());
    table_.rows.push_back(row);
    table_.save(t.parts().folder.file("eval.csv"));
    t.summary().final_map = m;
    if (std::isfinite(m) && m > st.best_map) {
      st.best_map = m;
      st.best_iteration = st.iteration;
      st.rng_state = rng_state_bytes();
      save_checkpoint(t.parts().folder.best(), *t.parts().net, t.config(), &st, nullptr);
      spdlog::info("new best {} {:.4f} at iteration {}: {}", eval_->metric(), m, st.iteration, t.parts().folder.best());
    }
    util::PlotOptions po;
    po.title = t.config().model.head == Head::Classifier ? std::string("val accuracy")
                                                         : "test mAP (" + t.config().eval.metric + ")";
    po.x_label = "iteration";
    po.y_label = eval_->metric();
    po.y_range = util::AxisRange{0, 1};
    std::vector<util::Series> series;
    for (const auto& c : eval_->plotted()) series.push_back({c, table_.column("iteration"), table_.column(c), {}, 2});
    util::save_line_plot(t.parts().folder.file(eval_->plot_file()), series, po);
  }

  std::unique_ptr<Evaluation> eval_;
  CsvTable table_{{"iteration", "epoch"}, {}};
  int64_t last_evaluated_ = -1;
};

}  // namespace

std::unique_ptr<Hook> evaluation_hook(std::optional<data::VocDataset> test) {
  return std::make_unique<EvaluationHook>(test ? std::make_unique<DetectionEvaluation>(std::move(*test)) : nullptr);
}

std::unique_ptr<Hook> classifier_evaluation_hook(std::optional<data::ImageFolderDataset> val) {
  return std::make_unique<EvaluationHook>(val ? std::make_unique<ClassifierEvaluation>(std::move(*val)) : nullptr);
}

}  // namespace yolo2::train
