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
// waiting in the gradient all-reduce) and `r` becomes the global diagnostics.
void exchange_loss(Distributed& dist, loss::RegionLossResult& r, bool& finite, std::string& bad_term) {
  const double n = static_cast<double>(r.count);
  at::Tensor st =
      at::tensor(std::vector<double>{finite ? 0.0 : 1.0, r.coord, r.object, r.noobject, r.cls, r.warmup, r.avg_noobj,
                                     r.avg_iou * n, r.avg_class * n, r.avg_obj * n, r.recall50 * n, r.recall75 * n, n},
                 at::kDouble);
  dist.all_reduce_sum({st}, "exchanging the loss");
  const std::vector<double> v(st.data_ptr<double>(), st.data_ptr<double>() + st.numel());
  if (v[0] > 0 && finite) finite = false, bad_term = "(on another rank)";
  const double w = dist.world_size(), total = v[12];
  r.coord = v[1] / w, r.object = v[2] / w, r.noobject = v[3] / w, r.cls = v[4] / w, r.warmup = v[5] / w;
  r.avg_noobj = v[6] / w;
  r.count = static_cast<int64_t>(total);
  const double inv = total > 0 ? 1.0 / total : 0.0;
  r.avg_iou = v[7] * inv, r.avg_class = v[8] * inv, r.avg_obj = v[9] * inv, r.recall50 = v[10] * inv,
  r.recall75 = v[11] * inv;
}

// Adds micro-batch `r` with weight w (terms) and its ground-truth count (diagnostics) into `acc`;
// finish() turns the count-weighted sums into means.
void accumulate(loss::RegionLossResult& acc, const loss::RegionLossResult& r, double w) {
  const auto n = static_cast<double>(r.count);
  acc.coord += r.coord * w, acc.object += r.object * w, acc.noobject += r.noobject * w, acc.cls += r.cls * w;
  acc.warmup += r.warmup * w, acc.avg_noobj += r.avg_noobj * w;
  acc.avg_iou += r.avg_iou * n, acc.avg_class += r.avg_class * n, acc.avg_obj += r.avg_obj * n;
  acc.recall50 += r.recall50 * n, acc.recall75 += r.recall75 * n;
  acc.count += r.count;
}

void finish(loss::RegionLossResult& acc) {
  if (acc.count == 0) return;
  const auto n = static_cast<double>(acc.count);
  acc.avg_iou /= n, acc.avg_class /= n, acc.avg_obj /= n, acc.recall50 /= n, acc.recall75 /= n;
}

std::optional<std::string> non_finite_term(const loss::RegionLossResult& r) {
  const std::pair<const char*, double> terms[] = {
      {"coord", r.coord}, {"object", r.object}, {"noobject", r.noobject}, {"class", r.cls}, {"warmup", r.warmup}};
  for (const auto& [name, v] : terms)
    if (!std::isfinite(v)) return std::string(name);
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
  return static_cast<double>(p_.state.images_seen) / static_cast<double>(p_.train_set->images.size());
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

void Trainer::notify_eval(const eval::EvalRun& run) {
  for (auto& h : hooks_) h->after_eval(*this, run);
}

TrainSummary Trainer::train() {
  const TrainConfig& tc = p_.config.train;
  spdlog::info("train: {} iterations of {} images ({} x {}), {} -> {}, device {}, run folder {}", p_.max_batches,
               tc.batch, tc.subdivisions, tc.batch / tc.subdivisions, p_.state.iteration, p_.max_batches,
               p_.device.str(), p_.folder.dir);
  summary_.run_dir = p_.folder.dir;
  for (auto& h : hooks_) h->before_train(*this);
  loader_ = std::make_unique<data::Loader>(p_.train_set, p_.loader);
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

loss::RegionLossResult Trainer::micro_step(int s, double gamma, int& size) {
  std::optional<data::Batch> batch = loader_->next();
  if (!batch) throw Error("the data loader ended early (internal error)");
  size = batch->size;
  const auto format = p_.config.runtime.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  const at::Tensor raw = p_.net->forward(batch->images.to(p_.device).contiguous(format));
  const int mini = p_.config.train.batch / p_.config.train.subdivisions;
  const int64_t seen = p_.state.images_seen + static_cast<int64_t>(s + 1) * mini;
  return loss::region_loss(raw, batch->boxes, batch->labels, batch->counts, seen, gamma, p_.loss);
}

bool Trainer::run_step() {
  const auto t0 = std::chrono::steady_clock::now();
  const int sub = p_.config.train.subdivisions;
  TrainState& st = p_.state;
  step_ = StepRecord{};
  // darknet counts the update being made from 1 (schedule.hpp).
  step_.lr = learning_rate(p_.config.train, st.iteration + 1, p_.max_batches);
  step_.gamma =
      focal_gamma(p_.config.loss.focal, static_cast<double>(st.iteration) / static_cast<double>(p_.max_batches));
  set_lr(*p_.optimizer, step_.lr);
  p_.optimizer->zero_grad();
  for (int s = 0; s < sub; ++s) {
    loss::RegionLossResult r = micro_step(s, step_.gamma, step_.size);
    std::optional<std::string> bad = non_finite_term(r);
    bool finite = !bad;
    std::string bad_term = bad.value_or("");
    if (p_.dist) exchange_loss(*p_.dist, r, finite, bad_term);
    if (!finite) {
      for (int rest = s + 1; rest < sub; ++rest) loader_->next();  // keep the stream aligned with iterations
      return skip_or_throw(bad_term);
    }
    // The last micro-batch of a step averages the gradients over the ranks (bucketed all-reduce
    // during its backward pass); the others accumulate locally, as DDP's no_sync().
    if (p_.dist && s == sub - 1) p_.dist->prepare_backward(r.total);
    try {
      (r.total / sub).backward();
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {  // c10::Error, or Gloo's IoException from the reducer's all-reduce
      if (p_.dist) throw Error(p_.dist->failure_message("the backward pass (gradient all-reduce)", e.what()));
      throw;
    }
    const double w = 1.0 / sub;
    step_.loss += (r.coord + r.object + r.noobject + r.cls + r.warmup) * w;
    accumulate(step_.terms, r, w);
  }
  p_.optimizer->step();
  st.iteration += 1;
  st.images_seen += p_.config.train.batch;
  images_this_run_ += p_.config.train.batch;
  finish(step_.terms);
  step_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return true;
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
