#include "yolo2/train/hooks.hpp"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <iomanip>
#include <sstream>

#include "csv_table.hpp"
#include "metrics_row.hpp"
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

// loss.png's lines and the progress line's "avg": avg = w * avg + (1 - w) * loss, from the first value
// on (darknet's avg_loss weight); a non-finite value leaves the average where it was.
constexpr double kLossSmoothing = 0.9;

std::vector<double> moving_average(const std::vector<double>& y, double w) {
  std::vector<double> out(y.size(), std::nan(""));
  double avg = std::nan("");
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (std::isfinite(y[i])) avg = std::isfinite(avg) ? w * avg + (1 - w) * y[i] : y[i];
    out[i] = avg;
  }
  return out;
}

class MetricsHook : public Hook {
 public:
  void before_train(Trainer& t) override {
    table_.header = metrics_columns(t);
    if (t.state().iteration > 0) table_.load(t.parts().folder.file("metrics.csv"), t.state().iteration);
  }
  void after_scalars(Trainer& t, const StepRecord& s) override { table_.rows.push_back(metrics_row(t, s)); }
  void before_save(Trainer& t) override { table_.save(t.parts().folder.file("metrics.csv")); }
  void after_eval(Trainer& t) override { plot(t); }
  void after_train(Trainer& t) override {
    if (!t.main_rank()) return;
    if (!t.summary().interrupted) table_.save(t.parts().folder.file("metrics.csv"));
    plot(t);
  }

 private:
  // Each term as its moving average over its faint per-iteration values (the raw loss of one batch
  // is noise at a glance).
  void plot(Trainer& t) const {
    const auto it = table_.column("iteration");
    if (it.empty()) return;
    std::vector<std::string> names{"loss"};
    for (const auto& sc : t.parts().task->scalars())
      if (sc.kind == ScalarKind::Term && sc.drawn) names.push_back(sc.name);
    std::vector<util::Series> raw, smooth;
    for (std::size_t k = 0; k < names.size(); ++k) {
      const cv::Scalar colour = util::palette_colour(static_cast<int>(k));
      const std::vector<double> y = table_.column(names[k]);
      raw.push_back({"", it, y, colour * 0.3 + cv::Scalar(255, 255, 255) * 0.7, 1});
      smooth.push_back({names[k], it, moving_average(y, kLossSmoothing), colour, 2});
    }
    raw.insert(raw.end(), smooth.begin(), smooth.end());
    util::PlotOptions po;
    po.title = "training loss per image (lines: moving average " + fmt::format("{:g}", kLossSmoothing) +
               "; faint: each iteration)";
    po.x_label = "iteration";
    po.y_label = "loss";
    po.log_y = true;
    util::save_line_plot(t.parts().folder.file("loss.png"), raw, po);
  }

  CsvTable table_{{}, {}};
};

class ProgressHook : public Hook {
 public:
  void after_scalars(Trainer& t, const StepRecord& s) override {
    ema_loss_ = ema_loss_ < 0 ? s.loss : kLossSmoothing * ema_loss_ + (1 - kLossSmoothing) * s.loss;
    const int64_t it = s.iteration, max = t.max_batches();
    if (it % t.config().train.log_every != 0 && it != max) return;
    const double elapsed = t.loop_seconds();
    const double ips = static_cast<double>(t.images_this_run()) / std::max(elapsed, 1e-9);
    const double eta = static_cast<double>(max - it) * (elapsed / static_cast<double>(it - t.first_iteration()));
    // The loss terms in brackets, then the diagnostics: "(coord 0.101 object 0.433 ...) | avg_iou ...".
    const auto& specs = t.parts().task->scalars();
    std::ostringstream terms, diag;
    for (std::size_t i = 0; i < specs.size() && i < s.values.size(); ++i) {
      std::ostringstream& os = specs[i].kind == ScalarKind::Term ? terms : diag;
      os << (os.tellp() > 0 ? " " : "") << specs[i].name << " " << std::fixed << std::setprecision(3) << s.values[i];
    }
    std::string settings;  // " gamma 0.07"
    const auto& names = t.parts().task->settings();
    for (std::size_t i = 0; i < names.size() && i < s.settings.size(); ++i)
      settings += fmt::format(" {} {:.2f}", names[i], s.settings[i]);
    const std::string scale = t.parts().precision.loss_scaling
                                  ? fmt::format(" | loss scale {:g} ({} skipped)", s.loss_scale, s.overflow_skips)
                                  : "";
    spdlog::info(
        "it {}/{} ep {:.2f} | loss {:.3f} avg {:.3f} ({}) | {} n {} | lr {:.2e}{} | {}px{} | {:.1f} img/s | eta {}", it,
        max, t.epoch(s.images_seen), s.loss, ema_loss_, terms.str(), diag.str(), s.count, s.lr, settings, s.size, scale,
        ips, fmt_duration(eta));
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
    const double minutes = t.config().train.checkpoint_minutes;
    bool due = st.iteration % t.config().train.checkpoint_every == 0;
    if (!due && minutes > 0) {
      due = t.seconds_since_save() >= 60 * minutes;
      // A save is a collective (rank 0's batch-norm statistics go to every rank): the ranks' clocks
      // must agree on it, so a save is due when it is due on any rank.
      if (Distributed* dist = t.parts().dist.get()) {
        at::Tensor flag = at::full({1}, due ? 1.0 : 0.0, at::kDouble);
        dist->all_reduce_sum({flag}, "agreeing on a timed save");
        due = flag.item<double>() > 0;
      }
    }
    if (due || t.stopping() || t.at_end()) t.save_last();
    if (!t.stopping()) return;
    t.wait_for_saves();  // on disk before the message says so (the process exits next)
    t.summary().interrupted = true;
    const std::string last = t.parts().folder.last();
    spdlog::warn("stopped at iteration {}: state saved to {}; resume with: yolo2 {} --resume {}", st.iteration, last,
                 t.parts().task->info().verb, last);
  }
};

}  // namespace

std::vector<std::string> metrics_columns(Trainer& t) {
  // iteration, epoch, images_seen, lr, the task's settings (gamma), size, loss, the task's scalars,
  // count, images_per_s, loss_scale (fp16's; 1 without) and overflow_skips (fp16 steps skipped so far)
  std::vector<std::string> c{"iteration", "epoch", "images_seen", "lr"};
  for (const auto& name : t.parts().task->settings()) c.push_back(name);
  c.insert(c.end(), {"size", "loss"});
  for (const auto& sc : t.parts().task->scalars()) c.push_back(sc.name);
  c.insert(c.end(), {"count", "images_per_s", "loss_scale", "overflow_skips"});
  return c;
}

std::vector<double> metrics_row(Trainer& t, const StepRecord& s) {
  std::vector<double> row{static_cast<double>(s.iteration), t.epoch(s.images_seen), static_cast<double>(s.images_seen),
                          s.lr};
  row.insert(row.end(), s.settings.begin(), s.settings.end());
  row.push_back(static_cast<double>(s.size));
  row.push_back(s.loss);
  row.insert(row.end(), s.values.begin(), s.values.end());
  row.push_back(static_cast<double>(s.count));
  row.push_back(t.config().train.batch / s.seconds);
  row.push_back(s.loss_scale);
  row.push_back(static_cast<double>(s.overflow_skips));
  return row;
}

std::unique_ptr<Hook> metrics_hook() { return std::make_unique<MetricsHook>(); }
std::unique_ptr<Hook> progress_hook() { return std::make_unique<ProgressHook>(); }
std::unique_ptr<Hook> stop_hook(int64_t stop_after) { return std::make_unique<StopHook>(stop_after); }
std::unique_ptr<Hook> checkpoint_hook() { return std::make_unique<CheckpointHook>(); }

}  // namespace yolo2::train
