#include "yolo2/train/hooks.hpp"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <iomanip>
#include <sstream>

#include "csv_table.hpp"
#include "yolo2/util/plot.hpp"
#include "yolo2/util/signals.hpp"

namespace yolo2::train {
namespace {

std::string fmt_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  std::ostringstream os;
  os << s / 3600 << ":" << std::setw(2) << std::setfill('0') << (s / 60) % 60 << ":" << std::setw(2) << s % 60;
  return os.str();
}

class MetricsHook : public Hook {
 public:
  void before_train(Trainer& t) override {
    if (t.state().iteration > 0) table_.load(t.parts().folder.file("metrics.csv"), t.state().iteration);
  }
  void after_step(Trainer& t) override {
    const StepRecord& s = t.last_step();
    const loss::RegionLossResult& r = s.terms;
    const TrainState& st = t.state();
    table_.rows.push_back({static_cast<double>(st.iteration),
                           t.epoch(),
                           static_cast<double>(st.images_seen),
                           s.lr,
                           s.gamma,
                           static_cast<double>(s.size),
                           s.loss,
                           r.coord,
                           r.object,
                           r.noobject,
                           r.cls,
                           r.warmup,
                           r.avg_iou,
                           r.avg_class,
                           r.avg_obj,
                           r.avg_noobj,
                           r.recall50,
                           r.recall75,
                           static_cast<double>(r.count),
                           t.config().train.batch / s.seconds});
  }
  void before_save(Trainer& t) override { table_.save(t.parts().folder.file("metrics.csv")); }
  void after_eval(Trainer& t, const eval::EvalRun&) override { plot(t); }
  void after_train(Trainer& t) override {
    if (!t.main_rank()) return;
    if (!t.summary().interrupted) table_.save(t.parts().folder.file("metrics.csv"));
    plot(t);
  }

 private:
  void plot(Trainer& t) const {
    const auto it = table_.column("iteration");
    if (it.empty()) return;
    std::vector<util::Series> s;
    for (const char* term : {"loss", "coord", "object", "noobject", "class"})
      s.push_back({term, it, table_.column(term), {}, 2});
    util::PlotOptions po;
    po.title = "training loss (per image)";
    po.x_label = "iteration";
    po.y_label = "loss";
    po.log_y = true;
    util::save_line_plot(t.parts().folder.file("loss.png"), s, po);
  }

  CsvTable table_{{"iteration", "epoch",     "images_seen", "lr",       "gamma",  "size",        "loss",
                   "coord",     "object",    "noobject",    "class",    "warmup", "avg_iou",     "avg_class",
                   "avg_obj",   "avg_noobj", "recall50",    "recall75", "count",  "images_per_s"},
                  {}};
};

class ProgressHook : public Hook {
 public:
  void after_step(Trainer& t) override {
    const StepRecord& s = t.last_step();
    ema_loss_ = ema_loss_ < 0 ? s.loss : 0.9 * ema_loss_ + 0.1 * s.loss;
    const int64_t it = t.state().iteration, max = t.max_batches();
    if (it % t.config().train.log_every != 0 && it != max) return;
    const double elapsed = t.loop_seconds();
    const double ips = static_cast<double>(t.images_this_run()) / std::max(elapsed, 1e-9);
    const double eta = static_cast<double>(max - it) * (elapsed / static_cast<double>(it - t.first_iteration()));
    const loss::RegionLossResult& r = s.terms;
    spdlog::info(
        "it {}/{} ep {:.2f} | loss {:.3f} avg {:.3f} (coord {:.3f} obj {:.3f} noobj {:.3f} cls {:.3f} warm {:.3f}) "
        "| iou {:.3f} cls {:.3f} obj {:.3f} noobj {:.4f} rec {:.2f} n {} | lr {:.2e} gamma {:.2f} | {}px "
        "| {:.1f} img/s | eta {}",
        it, max, t.epoch(), s.loss, ema_loss_, r.coord, r.object, r.noobject, r.cls, r.warmup, r.avg_iou, r.avg_class,
        r.avg_obj, r.avg_noobj, r.recall50, r.count, s.lr, s.gamma, s.size, ips, fmt_duration(eta));
  }

 private:
  double ema_loss_ = -1;
};

class StopHook : public Hook {
 public:
  explicit StopHook(int64_t stop_after) : stop_after_(stop_after) {}
  void after_step(Trainer& t) override {
    bool stop =
        util::stop_requested() || (stop_after_ >= 0 && t.state().iteration - t.first_iteration() >= stop_after_);
    if (Distributed* dist = t.parts().dist.get()) {  // a signal may reach one rank only
      at::Tensor flag = at::full({1}, stop ? 1.0 : 0.0, at::kDouble);
      dist->all_reduce_sum({flag}, "agreeing on a stop");
      stop = flag.item<double>() > 0;
    }
    if (stop) t.request_stop();
  }

 private:
  int64_t stop_after_;
};

class CheckpointHook : public Hook {
 public:
  void after_step(Trainer& t) override {
    const TrainState& st = t.state();
    if (st.iteration % t.config().train.checkpoint_every == 0 || t.stopping() || t.at_end()) t.save_last();
    if (!t.stopping()) return;
    t.summary().interrupted = true;
    const std::string last = t.parts().folder.last();
    spdlog::warn("stopped at iteration {}: state saved to {}; resume with: yolo2 train --resume {}", st.iteration, last,
                 last);
  }
};

}  // namespace

std::unique_ptr<Hook> metrics_hook() { return std::make_unique<MetricsHook>(); }
std::unique_ptr<Hook> progress_hook() { return std::make_unique<ProgressHook>(); }
std::unique_ptr<Hook> stop_hook(int64_t stop_after) { return std::make_unique<StopHook>(stop_after); }
std::unique_ptr<Hook> checkpoint_hook() { return std::make_unique<CheckpointHook>(); }

}  // namespace yolo2::train
