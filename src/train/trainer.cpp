// The Trainer: the loop, the step and the hook calls.
#include "yolo2/train/trainer.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <filesystem>
#include <optional>

#include "yolo2/error.hpp"
#include "yolo2/train/optimizer.hpp"
#include "yolo2/train/rng_state.hpp"

namespace yolo2::train {

namespace {

// One small all-reduce per micro-batch: every rank learns whether any rank's loss is non-finite
// (all skip or stop together: a rank that skipped its backward pass alone would leave the others
// waiting in the gradient all-reduce) and `values` and `count` become the global ones.
void exchange_values(Distributed& dist, const ScalarSpecs& specs, std::vector<double>& values, int64_t& count,
                     bool& finite, std::string& bad_term) {
  const auto n = static_cast<double>(count);
  std::vector<double> v{finite ? 0.0 : 1.0};
  for (std::size_t i = 0; i < specs.size(); ++i)
    v.push_back(values[i] * (specs[i].kind == ScalarKind::CountMean ? n : 1.0));
  v.push_back(n);
  at::Tensor st = at::tensor(v, at::kDouble);
  dist.all_reduce_sum({st}, "exchanging the loss");
  const double* sum = st.data_ptr<double>();
  if (sum[0] > 0 && finite) finite = false, bad_term = "(on another rank)";
  const double w = dist.world_size(), total = sum[specs.size() + 1];
  count = static_cast<int64_t>(total);
  const double inv = total > 0 ? 1.0 / total : 0.0;
  for (std::size_t i = 0; i < specs.size(); ++i)
    values[i] = sum[i + 1] * (specs[i].kind == ScalarKind::CountMean ? inv : 1.0 / w);
}

std::vector<double> to_host(const at::Tensor& t) {
  const at::Tensor h = t.to(at::kCPU, at::kDouble).contiguous();
  return {h.data_ptr<double>(), h.data_ptr<double>() + h.numel()};
}

// The count-weighted sums turned into means.
void finish(StepRecord& step, const ScalarSpecs& specs) {
  if (step.count == 0) return;
  const auto n = static_cast<double>(step.count);
  for (std::size_t i = 0; i < specs.size() && i < step.values.size(); ++i)
    if (specs[i].kind == ScalarKind::CountMean) step.values[i] /= n;
}

std::optional<std::string> non_finite_term(const ScalarSpecs& specs, const std::vector<double>& values) {
  for (std::size_t i = 0; i < specs.size() && i < values.size(); ++i)
    if (specs[i].kind == ScalarKind::Term && !std::isfinite(values[i])) return specs[i].name;
  return std::nullopt;
}

}  // namespace

void set_train_mode(model::YoloV2Impl& net, bool freeze_bn) {
  net.train();
  if (freeze_bn)
    for (auto& bn : net.norms())
      if (!bn.is_empty()) bn->eval();
}

Trainer::Trainer(TrainerParts parts) : p_(std::move(parts)), deferred_(p_.deferred_scalars) {}

void Trainer::add_hook(std::unique_ptr<Hook> hook) { hooks_.push_back(std::move(hook)); }

double Trainer::epoch(int64_t images_seen) const {
  return static_cast<double>(images_seen) / static_cast<double>(p_.task->train_images());
}

double Trainer::loop_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t_loop_).count();
}

void Trainer::set_train_mode() { train::set_train_mode(*p_.net, p_.config.train.freeze_bn); }

void Trainer::save_last() {
  read_scalars();  // a step with a non-finite loss stops the run before its weights are saved
  if (p_.dist) p_.dist->sync_buffers(*p_.net);  // rank 0's batch-norm statistics in every rank (and the file)
  if (!main_rank()) return;
  for (auto& h : hooks_) h->before_save(*this);
  p_.state.rng_state = rng_state_bytes();
  writer_.write(p_.folder.last(), checkpoint_bytes(*p_.net, p_.config, &p_.state, p_.optimizer.get()));
  t_saved_ = std::chrono::steady_clock::now();
}

void Trainer::wait_for_saves() { writer_.wait(); }

double Trainer::seconds_since_save() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t_saved_).count();
}

void Trainer::notify_eval() {
  for (auto& h : hooks_) h->after_eval(*this);
}

TrainSummary Trainer::train() {
  const TrainConfig& tc = p_.config.train;
  spdlog::info("train: {} iterations of {} images ({} x {}), {} -> {}, device {}, run folder {}", max_batches(),
               tc.batch, tc.subdivisions, tc.batch / tc.subdivisions, p_.state.iteration, max_batches(),
               p_.device.str(), p_.folder.dir);
  summary_.run_dir = p_.folder.dir;
  for (auto& h : hooks_) h->before_train(*this);
  p_.task->open(*this);
  t_loop_ = std::chrono::steady_clock::now();
  t_read_ = t_loop_;
  t_saved_ = t_loop_;
  first_iteration_ = p_.state.iteration;
  if (deferred_)
    spdlog::info("train: the loss terms are read every {} steps (train.log_every) and before saves and evaluations",
                 p_.config.train.log_every);
  while (p_.state.iteration < max_batches() && !stopping_) {
    if (!run_step()) continue;
    const auto t_hooks = std::chrono::steady_clock::now();
    for (auto& h : hooks_) h->after_step(*this);
    hook_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t_hooks).count();
  }
  read_scalars();
  wait_for_saves();
  for (auto& h : hooks_) h->after_train(*this);
  summary_.iterations = p_.state.iteration;
  summary_.images_seen = p_.state.images_seen;
  summary_.best_map = p_.state.best_map;
  summary_.best_iteration = p_.state.best_iteration;
  summary_.images_per_second = static_cast<double>(images_this_run_) / std::max(loop_seconds(), 1e-9);
  return summary_;
}

void Trainer::check_names(const loss::NamedScalars& values) {
  const ScalarSpecs& task = p_.task->scalars();
  bool same = values.specs != nullptr && values.specs->size() == task.size();
  for (std::size_t i = 0; same && i < task.size(); ++i)
    same = (*values.specs)[i].name == task[i].name && (*values.specs)[i].kind == task[i].kind;
  if (!same) throw Error("internal error: the task's loss gave other scalars than the task declares");
  names_checked_ = true;
}

void Trainer::accumulate(const MicroResult& r, double w) {
  const at::Tensor& v = r.values.values;
  if (!count_mask_.defined() || count_mask_.device() != v.device()) {  // once per run
    std::vector<double> count_mask, other_mask;
    for (const auto& spec : p_.task->scalars()) {
      count_mask.push_back(spec.kind == ScalarKind::CountMean ? 1.0 : 0.0);
      other_mask.push_back(spec.kind == ScalarKind::CountMean ? 0.0 : 1.0);
    }
    count_mask_ = at::tensor(count_mask, at::kDouble).to(v.device());
    other_mask_ = at::tensor(other_mask, at::kDouble).to(v.device());
  }
  // Exactly count or w per scalar (1 x a + 0 x b), made where the values are: no transfer.
  const at::Tensor weighted = v * (count_mask_ * static_cast<double>(r.count) + other_mask_ * w);
  step_values_ = step_values_.defined() ? step_values_ + weighted : weighted;
  // The loss: the micro-batch's terms summed in order, times w (the same additions as on the host).
  at::Tensor terms;
  const ScalarSpecs& specs = p_.task->scalars();
  for (std::size_t i = 0; i < specs.size(); ++i)
    if (specs[i].kind == ScalarKind::Term) {
      const at::Tensor x = v.narrow(0, static_cast<int64_t>(i), 1);
      terms = terms.defined() ? terms + x : x;
    }
  if (terms.defined()) step_loss_ = step_loss_.defined() ? step_loss_ + terms * w : terms * w;
  current_.count += r.count;
}

// Read now: a non-finite loss is skipped or stops the run before its backward pass, and the ranks
// agree on it (and exchange their values) in one small all-reduce. Unset: the micro-batch is fine
// (its values the global ones); set: the term that is not finite.
std::optional<std::string> Trainer::check_now(MicroResult& r) {
  const ScalarSpecs& specs = p_.task->scalars();
  std::vector<double> v = to_host(r.values.values);
  std::optional<std::string> bad = non_finite_term(specs, v);
  bool finite = !bad;
  std::string bad_term = bad.value_or("");
  if (p_.dist) exchange_values(*p_.dist, specs, v, r.count, finite, bad_term);
  if (!finite) return bad_term;
  if (p_.dist) r.values.values = at::tensor(v, at::kDouble);  // the global values
  return std::nullopt;
}

// The micro-batch's share of the step's gradient. The last micro-batch of a step averages the
// gradients over the ranks (bucketed all-reduce during its backward pass); the others accumulate
// locally, as DDP's no_sync().
void Trainer::backward(const MicroResult& r, bool last, int sub) {
  if (p_.dist && last) p_.dist->prepare_backward(r.total);
  try {
    // fp16: the loss scaled by a power of two, so small gradients survive in half precision.
    (p_.precision.loss_scaling ? r.total * (p_.state.loss_scale.scale / sub) : r.total / sub).backward();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // c10::Error, or Gloo's IoException from the reducer's all-reduce
    if (p_.dist) throw Error(p_.dist->failure_message("the backward pass (gradient all-reduce)", e.what()));
    throw;
  }
}

bool Trainer::run_step() {
  const auto t0 = std::chrono::steady_clock::now();
  const int sub = p_.config.train.subdivisions;
  TrainState& st = p_.state;
  current_ = StepRecord{};
  step_values_ = step_loss_ = at::Tensor();
  Task& task = *p_.task;
  // darknet counts the update being made from 1 (schedule.hpp).
  current_.lr = task.learning_rate(st.iteration + 1);
  current_.settings = task.begin_step(*this);
  set_lr(*p_.optimizer, current_.lr);
  p_.optimizer->zero_grad();
  for (int s = 0; s < sub; ++s) {
    MicroResult r = task.micro_step(*this, s);
    phase(Phase::Loss);
    if (!names_checked_) check_names(r.values);
    current_.size = r.size;
    if (!deferred_)
      if (std::optional<std::string> bad = check_now(r)) {
        for (int rest = s + 1; rest < sub; ++rest) task.skip_micro_batch();  // keep the stream aligned with iterations
        return skip_or_throw(*bad);
      }
    backward(r, s == sub - 1, sub);
    phase(Phase::Backward);
    accumulate(r, 1.0 / sub);
  }
  optimizer_step();
  phase(Phase::Step);
  end_step(t0);
  return true;
}

// The state advanced, the step's record queued with its values (then its loss: one row), and a read
// every train.log_every steps (and at most kMaxPending steps apart: the rows are small, but
// log_every may be large).
void Trainer::end_step(std::chrono::steady_clock::time_point t0) {
  TrainState& st = p_.state;
  st.iteration += 1;
  st.images_seen += p_.config.train.batch;
  images_this_run_ += p_.config.train.batch;
  current_.iteration = st.iteration;
  current_.images_seen = st.images_seen;
  current_.overflow_skips = st.loss_scale.skipped;
  current_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  pending_.push_back({current_, step_loss_.defined() ? at::cat({step_values_, step_loss_})
                                                     : at::cat({step_values_, step_values_.new_zeros({1})})});
  constexpr std::size_t kMaxPending = 1000;
  if (!deferred_ || st.iteration % p_.config.train.log_every == 0 || at_end() || pending_.size() >= kMaxPending)
    read_scalars();
}

void Trainer::read_scalars() {
  if (pending_.empty()) return;
  const ScalarSpecs& specs = p_.task->scalars();
  std::vector<Pending> done;
  done.swap(pending_);
  std::vector<at::Tensor> values;
  for (const Pending& d : done) values.push_back(d.values);
  at::Tensor rows = at::stack(values);
  const auto n = static_cast<int64_t>(specs.size());
  TORCH_CHECK(rows.size(1) == n + 1, "the task gave ", rows.size(1) - 1, " values for ", n, " scalars");
  // Deferred under several processes: the ranks' rows made global here, in one all-reduce per read.
  if (deferred_ && p_.dist) rows = global_rows(rows, done, specs);
  const at::Tensor host = rows.to(at::kCPU, at::kDouble).contiguous();  // one transfer
  // The steps' own time: since the last read, less what the hooks took meanwhile (saves, evaluations).
  const auto now = std::chrono::steady_clock::now();
  const double window = std::max(std::chrono::duration<double>(now - t_read_).count() - hook_seconds_, 0.0);
  t_read_ = now;
  hook_seconds_ = 0;
  for (std::size_t k = 0; k < done.size(); ++k) {
    StepRecord& rec = done[k].record;
    const double* v = host.data_ptr<double>() + static_cast<int64_t>(k) * (n + 1);
    rec.values.assign(v, v + n);
    rec.loss = v[n];
    if (deferred_) {
      if (std::optional<std::string> bad = non_finite_term(specs, rec.values))
        throw_non_finite(*bad, rec.iteration, rec.iteration < p_.state.iteration);
      rec.seconds = window / static_cast<double>(done.size());
    }
    finish(rec, specs);
  }
  for (const Pending& d : done)
    for (auto& h : hooks_) h->after_scalars(*this, d.record);
}

// The rows of the steps read together, on every rank the global ones (exchange_values' rule, with
// the counts of each step): count-weighted sums and counts summed over the ranks, the other values
// (terms, loss) averaged. A non-finite value on one rank is non-finite in the sum, so every rank
// stops at the same step. The rows stay where they are (a GPU's for NCCL).
at::Tensor Trainer::global_rows(const at::Tensor& rows, std::vector<Pending>& done, const ScalarSpecs& specs) {
  std::vector<double> counts;
  for (const Pending& d : done) counts.push_back(static_cast<double>(d.record.count));
  at::Tensor all = at::cat({rows.to(at::kDouble), at::tensor(counts, at::kDouble).to(rows.device()).unsqueeze(1)}, 1);
  p_.dist->all_reduce_sum({all}, "exchanging the loss");  // throws the named rank failure
  const auto n = static_cast<int64_t>(specs.size());
  const at::Tensor total = all.select(1, n + 1).to(at::kCPU).contiguous();
  for (std::size_t k = 0; k < done.size(); ++k)
    done[k].record.count = static_cast<int64_t>(total.data_ptr<double>()[k]);
  std::vector<double> scale;
  for (const auto& spec : specs)
    scale.push_back(spec.kind == ScalarKind::CountMean ? 1.0 : 1.0 / p_.dist->world_size());
  scale.push_back(1.0 / p_.dist->world_size());  // the loss
  return all.narrow(1, 0, n + 1) * at::tensor(scale, at::kDouble).to(rows.device());
}

// The optimizer step; with fp16's loss scaling, the gradients are unscaled first and a step whose
// gradients overflowed is skipped (logged, counted in metrics.csv), as torch.amp.GradScaler does.
void Trainer::optimizer_step() {
  LossScale& ls = p_.state.loss_scale;
  current_.loss_scale = p_.precision.loss_scaling ? ls.scale : 1.0;
  if (!p_.precision.loss_scaling) {
    p_.optimizer->step();
    return;
  }
  std::vector<at::Tensor> params;
  for (auto& group : p_.optimizer->param_groups())
    for (const auto& t : group.params()) params.push_back(t);
  const bool finite = runtime::unscale_gradients(params, ls.scale);
  if (finite) p_.optimizer->step();
  runtime::update_loss_scale(ls, finite);
  if (finite) return;
  current_.overflow = true;
  spdlog::warn(
      "iteration {}: fp16 gradients overflowed at loss scale {}; optimizer step skipped, scale now {} ({} "
      "skipped in this run so far)",
      p_.state.iteration + 1, current_.loss_scale, ls.scale, ls.skipped);
}

void Trainer::throw_non_finite(const std::string& bad_term, int64_t iteration, bool later_steps) const {
  const std::string saved = std::filesystem::exists(p_.folder.last())
                                ? "The last good state is in " + p_.folder.last()
                                : "No checkpoint was written yet (train.checkpoint_every)";
  throw Error(
      "iteration " + std::to_string(iteration) + ": loss term '" + bad_term + "' is not finite (NaN or inf); stopping" +
      (later_steps ? " (found when the loss terms were read, " + std::to_string(p_.state.iteration - iteration) +
                         " steps later; none of them was saved)"
                   : "") +
      ". " + saved + " (lower train.lr, or set train.skip_nonfinite to skip such batches)");
}

bool Trainer::skip_or_throw(const std::string& bad_term) {
  TrainState& st = p_.state;
  if (!p_.config.train.skip_nonfinite) throw_non_finite(bad_term, st.iteration + 1, false);
  spdlog::warn("iteration {}: loss term '{}' is not finite; batch skipped (train.skip_nonfinite)", st.iteration + 1,
               bad_term);
  p_.optimizer->zero_grad();
  st.iteration += 1;
  st.images_seen += p_.config.train.batch;
  return false;
}

}  // namespace yolo2::train
