// run_task: builds a Trainer for a task from the config (resume, device and ranks, run folder, the
// task's data, model, optimizer, the task's loss and stream) and adds the hooks; the registry of
// tasks (tasks.hpp).
#include <spdlog/spdlog.h>
#include <torch/utils.h>

#include <filesystem>

#include "../config_words.hpp"
#include "yolo2/error.hpp"
#include "yolo2/io/initial_weights.hpp"
#include "yolo2/options.hpp"
#include "yolo2/runtime/setup.hpp"
#include "yolo2/train/hooks.hpp"
#include "yolo2/train/optimizer.hpp"
#include "yolo2/train/rng_state.hpp"
#include "yolo2/train/tasks.hpp"
#include "yolo2/train/trainer.hpp"
#include "yolo2/util/cuda_memory.hpp"

namespace yolo2::train {

using io::Checkpoint;
using io::load_checkpoint;
using io::load_initial_weights;
using io::reject_overrides;
using runtime::local_batch_size;
using runtime::setup_precision;

int64_t total_iterations(const TrainConfig& t, int64_t train_images) {
  if (t.epochs > 0) return t.epochs * ((train_images + t.batch - 1) / t.batch);
  return t.max_batches;
}

namespace {

// --resume: the stored config rules; --set overrides apply on top of it (the training length, say).
std::optional<Checkpoint> open_resume(const TrainOptions& options, Config& config) {
  if (options.resume.empty()) return std::nullopt;
  Checkpoint ck = load_checkpoint(options.resume);
  if (!ck.state) throw Error(options.resume + ": this checkpoint holds no training state (not a last.ckpt?)");
  if (!ck.optimizer) throw Error(options.resume + ": this checkpoint holds no optimizer state");
  reject_overrides(options.resume, options.resume_overrides, {"model", "data.classes", "train.optimizer"},
                   "the resumed weights and optimizer state fix the network, the classes and the optimizer");
  config = ck.config;
  for (const auto& o : options.resume_overrides) apply_override(config, o);
  validate(config);
  if (!options.resume_overrides.empty())
    spdlog::info("resume: applied {} override(s) to the stored config", options.resume_overrides.size());
  return ck;
}

std::unique_ptr<Distributed> join_job(const TrainOptions& options, Config& config, c10::Device& device) {
  if (!options.dist.enabled()) return nullptr;
  if (device.is_cuda()) {
    device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(options.dist.local_rank));
    util::set_cuda_device(options.dist.local_rank);  // NCCL's communicator and stray allocations: this GPU
  }
  auto dist = std::make_unique<Distributed>(options.dist, config.distributed, device);
  if (!dist->is_main()) spdlog::set_level(spdlog::level::warn);  // rank 0 reports; the others warn and fail
  local_batch_size(config.train.batch / config.train.subdivisions, dist->world_size());
  return dist;
}

// The network (fresh from the seed and train.init_weights, or the resumed one), on the device, in
// training mode, shared by the ranks; the optimizer and the state.
void build_model(TrainerParts& p, std::optional<Checkpoint>& resumed, const std::string& resume_path) {
  const Config& c = p.config;
  if (resumed && !p.device.is_cpu()) {  // the optimizer state must be read onto its parameters' device
    Checkpoint on_device = load_checkpoint(resume_path, p.device);
    resumed->model = on_device.model;
    resumed->optimizer = std::move(on_device.optimizer);
  }
  if (!resumed) torch::manual_seed(c.runtime.seed);
  p.net =
      resumed ? resumed->model : model::YoloV2(model::network_spec(c.model, static_cast<int>(c.data.classes.size())));
  if (!resumed) load_initial_weights(*p.net, c.train.init_weights);
  p.net->to(p.device);
  model::set_weight_memory_format(
      *p.net, c.runtime.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
  // train.freeze_bn: batch norm stays in evaluation mode with fixed gamma/beta.
  if (c.train.freeze_bn)
    for (auto& bn : p.net->norms())
      if (!bn.is_empty()) bn->weight.requires_grad_(false), bn->bias.requires_grad_(false);
  set_train_mode(*p.net, c.train.freeze_bn);
}

void build_optimizer(TrainerParts& p, std::optional<Checkpoint>& resumed, const std::string& resume_path) {
  p.optimizer = make_optimizer(*p.net, p.config.train);
  if (!resumed) return;
  p.state = *resumed->state;
  p.optimizer->load(*resumed->optimizer);
  restore_rng_state(p.state.rng_state);
  spdlog::info("resume: {} at iteration {} ({} images seen)", resume_path, p.state.iteration, p.state.images_seen);
}

// The task of a config's model.head, for the message that names the verb to use.
std::string head_message(const Config& config, const TaskInfo& running) {
  std::string other;
  for (TaskFactory make : registered_tasks())
    if (const TaskInfo& i = make()->info(); i.head == config.model.head) other = i.verb;
  return (config.source.empty() ? std::string("the config") : config.source) + ": model.head is " +
         config_word(config.model.head) + (other.empty() ? "" : ": train it with yolo2 " + other) + " (this is yolo2 " +
         running.verb + ")";
}

// Everything a first step needs is checked before the folder is touched (an --overwrite deletes the
// earlier run's files): here, that the training set holds a (micro-)batch.
void check_batch(const TrainerParts& p) {
  const int micro = p.config.train.batch / p.config.train.subdivisions;
  if (p.task->train_images() < micro)
    throw Error("the training set has " + std::to_string(p.task->train_images()) + " images, fewer than one batch of " +
                std::to_string(micro) + " (train.batch / train.subdivisions); nothing in " + p.folder.dir +
                " was changed");
}

// The folder a resumed run branches into (--output with --resume), or "" to continue in place. An
// --output naming the checkpoint's own folder is a resume in place: as a branch, --overwrite would
// first delete the history there (metrics.csv, eval.csv, best.ckpt) that the branch copies.
std::string branch_folder(const TrainOptions& options, bool resumed) {
  if (options.branch.empty()) return {};
  if (!resumed) throw Error("a branch (--output with --resume) needs --resume CKPT");
  std::error_code ec;
  if (std::filesystem::equivalent(options.branch, std::filesystem::path(options.resume).parent_path(), ec)) {
    spdlog::info("--output {} is the checkpoint's own run folder: the run continues there", options.branch);
    return {};
  }
  return options.branch;
}

}  // namespace

TrainSummary run_task(std::unique_ptr<Task> task, Config config, const TrainOptions& options) {
  const auto t_start = std::chrono::steady_clock::now();
  std::optional<Checkpoint> resumed = open_resume(options, config);
  if (config.model.head != task->info().head) throw Error(head_message(config, task->info()));
  runtime::setup_runtime(config.runtime);
  TrainerParts p;
  p.device = runtime::resolve_device(config.runtime.device);
  p.dist = join_job(options, config, p.device);  // a rank takes its own GPU (cuda:LOCAL_RANK)
  p.precision = setup_precision(config.runtime.precision, p.device);
  // Scalars read every train.log_every steps (no wait for the GPU in between) where nothing needs
  // them at every micro-batch: no batch skipping (the ranks exchange them at each read).
  p.deferred_scalars = options.deferred_scalars.value_or(p.device.is_cuda()) && !config.train.skip_nonfinite;
  if (options.deferred_scalars.value_or(false) && config.train.skip_nonfinite)
    spdlog::warn("train.skip_nonfinite checks the loss before each backward pass: the scalars are read every step");
  const std::string branch = branch_folder(options, resumed.has_value());
  if (!branch.empty()) config.train.output = branch;  // the run now lives there (its config.yaml says so)
  p.config = config;
  p.task = std::move(task);
  p.folder = locate_run_folder(config, options.resume, branch);
  const bool main_rank = !p.dist || p.dist->is_main();
  // Claimed (locked, refused if not ours or busy) before anything is loaded; written only once the
  // config, the data and the model have been checked.
  std::unique_ptr<RunLock> lock;
  const bool continues_in_place = resumed.has_value() && branch.empty();
  if (main_rank) lock = claim_run_folder(p.folder, continues_in_place, options.overwrite);
  p.task->load(p.config, options.evaluate);
  build_model(p, resumed, options.resume);
  if (p.dist) {
    p.dist->sync_model(*p.net);  // every rank starts from rank 0's weights (fresh or resumed)
    if (p.config.distributed.sync_bn) p.dist->use_sync_batch_norm(*p.net);
    p.dist->attach_reducer(*p.net);
  }
  build_optimizer(p, resumed, options.resume);
  p.task->prepare(p);
  std::unique_ptr<Hook> evaluation = evaluation_hook(p.task->evaluation());
  check_batch(p);
  if (main_rank) prepare_run_folder(p.folder, p.config, continues_in_place);
  if (main_rank && !branch.empty())
    copy_run_history(RunFolder{std::filesystem::path(options.resume).parent_path().string()}, p.folder);
  Trainer trainer(std::move(p));
  trainer.add_hook(metrics_hook());
  trainer.add_hook(tensorboard_hook());  // after the metrics hook: its loss.png is drawn first
  trainer.add_hook(progress_hook());
  trainer.add_hook(stop_hook(options.stop_after));
  trainer.add_hook(checkpoint_hook());
  trainer.add_hook(std::move(evaluation));
  TrainSummary summary = trainer.train();
  if (!summary.interrupted && trainer.at_end()) trainer.parts().task->finish(trainer);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return summary;
}

TrainSummary run_training(Config config, const TrainOptions& options) {
  return run_task(detection_task(), std::move(config), options);
}

TrainSummary run_pretraining(Config config, const TrainOptions& options) {
  return run_task(classification_task(), std::move(config), options);
}

}  // namespace yolo2::train
