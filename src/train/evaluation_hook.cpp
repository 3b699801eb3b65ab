// Periodic and final evaluation during training (the task's Evaluation scores; task.hpp), eval.csv,
// its plot, and the best checkpoint.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>

#include "csv_table.hpp"
#include "yolo2/train/hooks.hpp"
#include "yolo2/train/rng_state.hpp"
#include "yolo2/util/plot.hpp"

namespace yolo2::train {
namespace {

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
      spdlog::info("new best {} {:.4f} at iteration {}: {}", t.parts().task->info().metric, m, st.iteration,
                   t.parts().folder.best());
    }
    util::PlotOptions po;
    po.title = eval_->plot_title(t.config());
    po.x_label = "iteration";
    po.y_label = t.parts().task->info().metric;
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

std::unique_ptr<Hook> evaluation_hook(std::unique_ptr<Evaluation> evaluation) {
  return std::make_unique<EvaluationHook>(std::move(evaluation));
}

}  // namespace yolo2::train
