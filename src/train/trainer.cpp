// The Trainer: the loop, the step and the hook calls.
#include "yolo2/train/trainer.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <filesystem>
#include <optional>

#include "yolo2/error.hpp"
#include "yolo2/train/optimizer.hpp"
#include "yolo2/train/rng_state.hpp"
#include "yolo2/train/schedule.hpp"

namespace yolo2::train {

namespace {

// One small all-reduce per micro-batch: every rank learns whether any rank's loss is non-finite
// (all skip or stop together: a rank that skipped its backward pass alone would leave the others
// waiting in the gradient all-reduce) and `r` becomes the global values.
void exchange_values(Distributed& dist, const std::vector<ScalarSpec>& specs, MicroResult& r, bool& finite,
                     std::string& bad_term) {
  const auto n = static_cast<double>(r.count);
  std::vector<double> v{finite ? 0.0 : 1.0};
  for (std::size_t i = 0; i < specs.size(); ++i)
    v.push_back(r.values[i] * (specs[i].kind == ScalarKind::CountMean ? n : 1.0));
  v.push_back(n);
  at::Tensor st = at::tensor(v, at::kDouble);
  dist.all_reduce_sum({st}, "exchanging the loss");
  const double* sum = st.data_ptr<double>();
  if (sum[0] > 0 && finite) finite = false, bad_term = "(on another rank)";
  const double w = dist.world_size(), total = sum[specs.size() + 1];
  r.count = static_cast<int64_t>(total);
  const double inv = total > 0 ? 1.0 / total : 0.0;
  for (std::size_t i = 0; i < specs.size(); ++i)
    r.values[i] = sum[i + 1] * (specs[i].kind == ScalarKind::CountMean ? inv : 1.0 / w);
}

// Adds micro-batch `r` into the step: terms and means with weight w, the others weighted by their
// count; finish() turns the count-weighted sums into means.
void accumulate(StepRecord& step, const std::vector<ScalarSpec>& specs, const MicroResult& r, double w) {
  const auto n = static_cast<double>(r.count);
  step.values.resize(specs.size(), 0.0);
  double terms = 0;  // summed before weighting, as (coord + object + ...) * w
  for (std::size_t i = 0; i < specs.size(); ++i) {
    step.values[i] += r.values[i] * (specs[i].kind == ScalarKind::CountMean ? n : w);
    if (specs[i].kind == ScalarKind::Term) terms += r.values[i];
  }
  step.loss += terms * w;
  step.count += r.count;
}

void finish(StepRecord& step, const std::vector<ScalarSpec>& specs) {
  if (step.count == 0) return;
  const auto n = static_cast<double>(step.count);
  for (std::size_t i = 0; i < specs.size() && i < step.values.size(); ++i)
    if (specs[i].kind == ScalarKind::CountMean) step.values[i] /= n;
}

std::optional<std::string> non_finite_term(const std::vector<ScalarSpec>& specs, const MicroResult& r) {
  for (std::size_t i = 0; i < specs.size(); ++i)
    if (specs[i].kind == ScalarKind::Term && !std::isfinite(r.values[i])) return specs[i].name;
  return std::nullopt;
}

}  // namespace

void set_train_mode(model::YoloV2Impl& net, bool freeze_bn) {
  net.train();
  if (freeze_bn)
    for (auto& bn : net.norms())
      if (!bn.is_empty()) bn->eval();
}

Trainer::Trainer(TrainerParts parts) : p_(std::move(parts)) {}

void Trainer::add_hook(std::unique_ptr<Hook> hook) { hooks_.push_back(std::move(hook)); }

double Trainer::epoch() const {
  return static_cast<double>(p_.state.images_seen) / static_cast<double>(p_.task->train_images());
}

double Trainer::loop_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t_loop_).count();
}

void Trainer::set_train_mode() { train::set_train_mode(*p_.net, p_.config.train.freeze_bn); }

void Trainer::save_last() {
  if (!main_rank()) return;
  for (auto& h : hooks_) h->before_save(*this);
  p_.state.rng_state = rng_state_bytes();
  save_checkpoint(p_.folder.last(), *p_.net, p_.config, &p_.state, p_.optimizer.get());
}

void Trainer::notify_eval() {
  for (auto& h : hooks_) h->after_eval(*this);
}

TrainSummary Trainer::train() {
  const TrainConfig& tc = p_.config.train;
  spdlog::info("train: {} iterations of {} images ({} x {}), {} -> {}, device {}, run folder {}", p_.max_batches,
               tc.batch, tc.subdivisions, tc.batch / tc.subdivisions, p_.state.iteration, p_.max_batches,
               p_.device.str(), p_.folder.dir);
  summary_.run_dir = p_.folder.dir;
  for (auto& h : hooks_) h->before_train(*this);
  p_.task->open(*this);
  t_loop_ = std::chrono::steady_clock::now();
  first_iteration_ = p_.state.iteration;
  while (p_.state.iteration < p_.max_batches && !stopping_) {
    if (!run_step()) continue;
    for (auto& h : hooks_) h->after_step(*this);
  }
  for (auto& h : hooks_) h->after_train(*this);
  summary_.iterations = p_.state.iteration;
  summary_.images_seen = p_.state.images_seen;
  summary_.best_map = p_.state.best_map;
  summary_.best_iteration = p_.state.best_iteration;
  summary_.images_per_second = static_cast<double>(images_this_run_) / std::max(loop_seconds(), 1e-9);
  return summary_;
}

bool Trainer::run_step() {
  const auto t0 = std::chrono::steady_clock::now();
  const int sub = p_.config.train.subdivisions;
  TrainState& st = p_.state;
  step_ = StepRecord{};
  TrainTask& task = *p_.task;
  const std::vector<ScalarSpec>& specs = task.scalars();
  // darknet counts the update being made from 1 (schedule.hpp).
  step_.lr = p_.lr_at ? p_.lr_at(st.iteration + 1) : learning_rate(p_.config.train, st.iteration + 1, p_.max_batches);
  if (task.uses_gamma())
    step_.gamma =
        focal_gamma(p_.config.loss.focal, static_cast<double>(st.iteration) / static_cast<double>(p_.max_batches));
  set_lr(*p_.optimizer, step_.lr);
  p_.optimizer->zero_grad();
  for (int s = 0; s < sub; ++s) {
    MicroResult r = task.micro_step(*this, s, step_.gamma);
    step_.size = r.size;
    std::optional<std::string> bad = non_finite_term(specs, r);
    bool finite = !bad;
    std::string bad_term = bad.value_or("");
    if (p_.dist) exchange_values(*p_.dist, specs, r, finite, bad_term);
    if (!finite) {
      for (int rest = s + 1; rest < sub; ++rest) task.skip_micro_batch();  // keep the stream aligned with iterations
      return skip_or_throw(bad_term);
    }
    // The last micro-batch of a step averages the gradients over the ranks (bucketed all-reduce
    // during its backward pass); the others accumulate locally, as DDP's no_sync().
    if (p_.dist && s == sub - 1) p_.dist->prepare_backward(r.total);
    try {
      // fp16: the loss scaled by a power of two, so small gradients survive in half precision.
      (p_.precision.loss_scaling ? r.total * (st.loss_scale.scale / sub) : r.total / sub).backward();
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {  // c10::Error, or Gloo's IoException from the reducer's all-reduce
      if (p_.dist) throw Error(p_.dist->failure_message("the backward pass (gradient all-reduce)", e.what()));
      throw;
    }
    accumulate(step_, specs, r, 1.0 / sub);
  }
  optimizer_step();
  st.iteration += 1;
  st.images_seen += p_.config.train.batch;
  images_this_run_ += p_.config.train.batch;
  finish(step_, specs);
  step_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return true;
}

// The optimizer step; with fp16's loss scaling, the gradients are unscaled first and a step whose
// gradients overflowed is skipped (logged, counted in metrics.csv), as torch.amp.GradScaler does.
void Trainer::optimizer_step() {
  LossScale& ls = p_.state.loss_scale;
  step_.loss_scale = p_.precision.loss_scaling ? ls.scale : 1.0;
  if (!p_.precision.loss_scaling) {
    p_.optimizer->step();
    return;
  }
  std::vector<at::Tensor> params;
  for (auto& group : p_.optimizer->param_groups())
    for (const auto& t : group.params()) params.push_back(t);
  const bool finite = unscale_gradients(params, ls.scale);
  if (finite) p_.optimizer->step();
  update_loss_scale(ls, finite);
  if (finite) return;
  step_.overflow = true;
  spdlog::warn(
      "iteration {}: fp16 gradients overflowed at loss scale {}; optimizer step skipped, scale now {} ({} "
      "skipped in this run so far)",
      p_.state.iteration + 1, step_.loss_scale, ls.scale, ls.skipped);
}

bool Trainer::skip_or_throw(const std::string& bad_term) {
  TrainState& st = p_.state;
  if (!p_.config.train.skip_nonfinite) {
    const std::string saved = std::filesystem::exists(p_.folder.last())
                                  ? "The last good state is in " + p_.folder.last()
                                  : "No checkpoint was written yet (train.checkpoint_every)";
    throw Error("iteration " + std::to_string(st.iteration + 1) + ": loss term '" + bad_term +
                "' is not finite (NaN or inf); stopping. " + saved +
                " (lower train.lr, or set train.skip_nonfinite to skip such batches)");
  }
  spdlog::warn("iteration {}: loss term '{}' is not finite; batch skipped (train.skip_nonfinite)", st.iteration + 1,
               bad_term);
  p_.optimizer->zero_grad();
  st.iteration += 1;
  st.images_seen += p_.config.train.batch;
  return false;
}

}  // namespace yolo2::train
