// One verb per training task (tasks.hpp): `yolo2 train` trains a detector (from scratch, darknet
// weights or a checkpoint) or resumes a run; `yolo2 pretrain` the same for the Darknet19 classifier
// on an ImageFolder dataset (same flags).
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <iomanip>
#include <iostream>

#include "verbs.hpp"
#include "yolo2/error.hpp"
#include "yolo2/runtime/launch.hpp"
#include "yolo2/runtime/setup.hpp"
#include "yolo2/train/run.hpp"
#include "yolo2/train/tasks.hpp"
#include "yolo2/util/signals.hpp"

namespace yolo2::cli {

namespace {

struct TrainFlags {
  train::TaskInfo task;  // the verb's task
  const std::string& verb() const { return task.verb; }
  ConfigFlags config;
  train::TrainOptions options;
  std::string output, weights;
  bool no_eval = false;
  int nproc = 1;
  runtime::DistOptions dist;
  std::string scalars;  // --scalars: every-step | deferred (unset: by device)
};

// torchrun's environment, then the flags on top.
runtime::DistOptions dist_options(const TrainFlags& f, const CLI::App* cmd) {
  runtime::DistOptions d = runtime::dist_options_from_env();
  if (cmd->count("--rank")) d.rank = d.local_rank = f.dist.rank;  // the local rank defaults to the rank
  if (cmd->count("--local-rank")) d.local_rank = f.dist.local_rank;
  if (cmd->count("--world-size")) d.world_size = f.dist.world_size;
  if (cmd->count("--master-addr")) d.master_addr = f.dist.master_addr;
  if (cmd->count("--master-port")) d.master_port = f.dist.master_port;
  if (d.rank < 0 || d.rank >= d.world_size)
    throw Error(f.verb() + ": rank " + std::to_string(d.rank) + " is outside a world of " +
                std::to_string(d.world_size) + " processes");
  return d;
}

// --nproc N: the same command line without --nproc, once per rank, each with its share of the threads.
void launch_ranks(const TrainFlags& f, const CLI::App* cmd) {
  const std::vector<std::string> own = runtime::own_command_line();  // argv, the program first
  const int threads = f.options.resume.empty() ? runtime::resolved_threads(f.config.load().runtime)
                                               : runtime::resolved_threads(RuntimeOptions{});
  const std::vector<std::string> child =
      runtime::rank_command_line({own.begin() + (own.empty() ? 0 : 1), own.end()}, threads, f.nproc);
  runtime::LaunchOptions lo;
  lo.nproc = f.nproc;
  if (cmd->count("--master-port")) lo.master_port = f.dist.master_port;
  const int rc = runtime::launch_local("/proc/self/exe", child, lo);
  if (rc == 128 + SIGINT || rc == 128 + SIGTERM) {  // the ranks saved and stopped
    spdlog::warn("{}: interrupted; resume with the same command and --resume RUN/last.ckpt", f.verb());
    return set_exit_status(rc);
  }
  if (rc != 0)
    throw Error(f.verb() + ": the " + std::to_string(f.nproc) + "-process job failed (see the rank messages above)");
}

void print_summary(const train::TrainSummary& s, bool evaluated, const train::TaskInfo& task) {
  std::cout << "\n"
            << (s.interrupted ? "interrupted" : "finished") << ": " << s.iterations << " iterations, " << s.images_seen
            << " images in " << std::fixed << std::setprecision(1) << s.seconds << " s (" << s.images_per_second
            << " images/s)\n";
  if (s.best_map >= 0)
    std::cout << "best " << task.metric << " " << std::setprecision(4) << s.best_map << " at iteration "
              << s.best_iteration << " (" << s.run_dir << "/best.ckpt); last " << task.metric << " " << s.final_map
              << "\n";
  std::cout << "run folder: " << s.run_dir << " (metrics.csv, loss.png, last.ckpt"
            << (evaluated ? ", " + task.eval_files : "")
            << (!s.interrupted && !task.final_files.empty() ? ", " + task.final_files : "") << ")\n";
  if (s.interrupted) std::cout << "resume with: yolo2 " << task.verb << " --resume " << s.run_dir << "/last.ckpt\n";
}

void run(const TrainFlags& f, const CLI::App* cmd) {
  train::TrainOptions o = f.options;
  o.dist = dist_options(f, cmd);
  if (f.nproc > 1 && std::getenv("RANK") == nullptr && cmd->count("--rank") == 0) return launch_ranks(f, cmd);
  o.evaluate = !f.no_eval;
  if (!f.scalars.empty()) o.deferred_scalars = f.scalars == "deferred";
  Config config;
  if (o.resume.empty()) {
    if (f.config.path.empty()) throw Error(f.verb() + ": give --config FILE (or --resume CKPT)");
    config = f.config.load();
    if (!f.output.empty()) config.train.output = f.output;
    if (!f.weights.empty()) config.train.init_weights = f.weights;
  } else {
    if (!f.config.path.empty())
      spdlog::warn("{} --resume uses the checkpoint's stored config; --config is ignored", f.verb());
    if (!f.weights.empty())
      throw Error(
          f.verb() + " --resume " + o.resume + " --weights " + f.weights +
          ": a resumed run continues from the checkpoint's weights; --weights starts a new run (drop --resume)");
    o.resume_overrides = f.config.overrides;
    o.branch = f.output;  // --output with --resume: the run continues in that new folder
  }
  util::install_stop_handler();
  const train::TrainSummary s = train::run_task(train::make_task(f.verb()), config, o);
  // Stopped by a signal: saved and resumable, but not finished (130 / 143, as the shell reports it).
  if (s.interrupted && util::stop_signal() != 0) set_exit_status(128 + util::stop_signal());
  if (o.dist.enabled() && o.dist.rank != 0) return;  // rank 0 reports
  print_summary(s, o.evaluate, f.task);
}

void add_training_verb(CLI::App& app, const train::TaskInfo& task) {
  auto* cmd = app.add_subcommand(task.verb, task.description);
  auto f = std::make_shared<TrainFlags>();
  f->task = task;
  f->config.add(cmd, false);
  cmd->add_option("--resume", f->options.resume,
                  "Continue a run from its last.ckpt (its stored config is used; --set applies on top)")
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", f->output,
                  "Run folder (default: runs/<train.name>); with --resume, a new folder where the run continues "
                  "(the checkpoint's folder is left as it is)");
  cmd->add_option("--weights", f->weights, "Initial weights: darknet .weights (full or prefix) or a yolo2 checkpoint");
  cmd->add_flag("--overwrite", f->options.overwrite, "Start afresh in a run folder that already holds a run");
  cmd->add_flag("--no-eval", f->no_eval, "Skip periodic and final evaluation");
  cmd->add_option("--stop-after", f->options.stop_after,
                  "Save and stop after N iterations of this process (resume later)")
      ->check(whole_number_from(1));
  cmd->add_option("--nproc", f->nproc,
                  "Train with N processes on this machine (c10d/Gloo data parallel; each gets runtime.threads / N "
                  "threads)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--scalars", f->scalars,
                  "When the loss terms reach the host: every-step (checked before each backward pass; the CPU's "
                  "default) or deferred (every train.log_every steps and before saves and evaluations; a GPU's "
                  "default, so that it never waits for the host)")
      ->check(CLI::IsMember({"every-step", "deferred"}));
  cmd->add_option("--rank", f->dist.rank, "This process's rank (else $RANK; torchrun sets it)");
  cmd->add_option("--world-size", f->dist.world_size, "Number of processes in the job (else $WORLD_SIZE)");
  cmd->add_option("--local-rank", f->dist.local_rank, "Rank on this machine, picks cuda:N (else $LOCAL_RANK)");
  cmd->add_option("--master-addr", f->dist.master_addr,
                  "Address of rank 0's rendezvous (else $MASTER_ADDR, 127.0.0.1)");
  cmd->add_option("--master-port", f->dist.master_port, "Port of rank 0's rendezvous (else $MASTER_PORT, 29500)");
  cmd->callback([f, cmd] { run(*f, cmd); });
}

}  // namespace

void add_training_verbs(CLI::App& app) {
  for (train::TaskFactory make : train::registered_tasks()) add_training_verb(app, make()->info());
}

}  // namespace yolo2::cli
