// Periodic and final evaluation during training, spread over the ranks, and the best checkpoint.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>

#include "csv_table.hpp"
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

class EvaluationHook : public Hook {
 public:
  void before_train(Trainer& t) override {
    for (const auto& n : t.config().data.classes) table_.header.push_back("ap_" + n);
    if (t.state().iteration > 0) table_.load(t.parts().folder.file("eval.csv"), t.state().iteration);
    if (!table_.rows.empty()) last_evaluated_ = static_cast<int64_t>(table_.rows.back()[0]);
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
    if (!p.test_set) return;
    p.net->eval();
    const model::FusedYoloV2 fused(*p.net);
    const eval::EvalOptions options = eval_options(p.config);
    const eval::EvalRun run = p.dist ? evaluate_sharded(fused, *p.test_set, options, p.device, *p.dist)
                                     : eval::evaluate_model(fused, *p.test_set, options, p.device);
    t.set_train_mode();
    last_evaluated_ = p.state.iteration;
    if (!t.main_rank()) return;
    record(t, run);
    t.notify_eval(run);
  }

  void record(Trainer& t, const eval::EvalRun& run) {
    TrainState& st = t.state();
    const double m = run.metrics.map;
    std::vector<double> row{static_cast<double>(st.iteration), t.epoch(), m};
    for (const auto& c : run.metrics.per_class) row.push_back(c.ap);
    table_.rows.push_back(row);
    table_.save(t.parts().folder.file("eval.csv"));
    t.summary().final_map = m;
    spdlog::info("evaluation at iteration {} on {} test images ({:.1f} images/s):\n{}", st.iteration,
                 t.parts().test_set->images.size(), run.images_per_second, eval::format_map_table(run.metrics));
    if (std::isfinite(m) && m > st.best_map) {
      st.best_map = m;
      st.best_iteration = st.iteration;
      st.rng_state = rng_state_bytes();
      save_checkpoint(t.parts().folder.best(), *t.parts().net, t.config(), &st, nullptr);
      spdlog::info("new best mAP {:.4f} at iteration {}: {}", m, st.iteration, t.parts().folder.best());
    }
    util::PlotOptions po;
    po.title = "test mAP (" + t.config().eval.metric + ")";
    po.x_label = "iteration";
    po.y_label = "mAP";
    po.y_range = util::AxisRange{0, 1};
    util::save_line_plot(t.parts().folder.file("map.png"),
                         {{"mAP", table_.column("iteration"), table_.column("map"), {}, 2}}, po);
  }

  CsvTable table_{{"iteration", "epoch", "map"}, {}};
  int64_t last_evaluated_ = -1;
};

}  // namespace

std::unique_ptr<Hook> evaluation_hook() { return std::make_unique<EvaluationHook>(); }

}  // namespace yolo2::train
