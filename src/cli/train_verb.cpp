// `yolo2 train`: train a detector (from scratch, darknet weights or a checkpoint), or resume a run.
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iomanip>
#include <iostream>

#include "verbs.hpp"
#include "yolo2/error.hpp"
#include "yolo2/train/launch.hpp"
#include "yolo2/train/trainer.hpp"
#include "yolo2/util/signals.hpp"

namespace yolo2::cli {

void add_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a YOLOv2 detector (Ctrl-C saves a resumable checkpoint)");
  auto flags = std::make_shared<ConfigFlags>();
  flags->add(cmd, false);
  auto opt = std::make_shared<train::TrainOptions>();
  auto output = std::make_shared<std::string>();
  auto weights = std::make_shared<std::string>();
  auto no_eval = std::make_shared<bool>(false);
  cmd->add_option("--resume", opt->resume, "Continue a run from its last.ckpt (its stored config is used; --set applies on top)")
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", *output, "Run folder (default: runs/<train.name>)");
  cmd->add_option("--weights", *weights, "Initial weights: darknet .weights (full or prefix) or a yolo2 checkpoint");
  cmd->add_flag("--overwrite", opt->overwrite, "Start afresh in a run folder that already holds a run");
  cmd->add_flag("--no-eval", *no_eval, "Skip periodic and final evaluation");
  cmd->add_option("--stop-after", opt->stop_after, "Save and stop after N iterations of this process (resume later)");
  auto nproc = std::make_shared<int>(1);
  auto dist = std::make_shared<train::DistOptions>();
  auto dist_flags = std::make_shared<std::vector<std::string>>();
  cmd->add_option("--nproc", *nproc,
                  "Train with N processes on this machine (c10d/Gloo data parallel; each gets runtime.threads / N "
                  "threads)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--rank", dist->rank, "This process's rank (else $RANK; torchrun sets it)");
  cmd->add_option("--world-size", dist->world_size, "Number of processes in the job (else $WORLD_SIZE)");
  cmd->add_option("--local-rank", dist->local_rank, "Rank on this machine, picks cuda:N (else $LOCAL_RANK)");
  cmd->add_option("--master-addr", dist->master_addr, "Address of rank 0's rendezvous (else $MASTER_ADDR, 127.0.0.1)");
  cmd->add_option("--master-port", dist->master_port, "Port of rank 0's rendezvous (else $MASTER_PORT, 29500)");
  cmd->callback([=] {
    train::TrainOptions o = *opt;
    // Distributed: torchrun's environment, then the flags on top.
    o.dist = train::dist_options_from_env();
    if (cmd->count("--rank")) o.dist.rank = o.dist.local_rank = dist->rank;  // local rank defaults to the rank
    if (cmd->count("--local-rank")) o.dist.local_rank = dist->local_rank;
    if (cmd->count("--world-size")) o.dist.world_size = dist->world_size;
    if (cmd->count("--master-addr")) o.dist.master_addr = dist->master_addr;
    if (cmd->count("--master-port")) o.dist.master_port = dist->master_port;
    if (o.dist.rank < 0 || o.dist.rank >= o.dist.world_size)
      throw Error("train: rank " + std::to_string(o.dist.rank) + " is outside a world of " +
                  std::to_string(o.dist.world_size) + " processes");
    if (*nproc > 1 && std::getenv("RANK") == nullptr && cmd->count("--rank") == 0) {
      // The launcher: the same command line without --nproc, once per rank.
      std::vector<std::string> args = train::own_command_line();
      std::vector<std::string> child;
      for (std::size_t i = 1; i < args.size(); ++i) {
        if (args[i] == "--nproc") { ++i; continue; }
        if (args[i].rfind("--nproc=", 0) == 0) continue;
        child.push_back(args[i]);
      }
      int threads = 0;
      if (o.resume.empty()) threads = resolved_threads(flags->load().runtime);
      else threads = resolved_threads(RuntimeConfig{});
      child.push_back("--set");
      child.push_back("runtime.threads=" + std::to_string(std::max(1, threads / *nproc)));
      train::LaunchOptions lo;
      lo.nproc = *nproc;
      if (cmd->count("--master-port")) lo.master_port = dist->master_port;
      const int rc = train::launch_local("/proc/self/exe", child, lo);
      if (rc != 0) throw Error("train: the " + std::to_string(*nproc) + "-process job failed (see the rank messages above)");
      return;
    }
    o.evaluate = !*no_eval;
    Config config;
    if (o.resume.empty()) {
      if (flags->path.empty()) throw Error("train: give --config FILE (or --resume CKPT)");
      config = flags->load();
      if (!output->empty()) config.train.output = *output;
      if (!weights->empty()) config.train.init_weights = *weights;
    } else {
      if (!flags->path.empty()) spdlog::warn("train --resume uses the checkpoint's stored config; --config is ignored");
      o.resume_overrides = flags->overrides;
    }
    util::install_stop_handler();
    const train::TrainSummary s = train::run_training(config, o);
    if (o.dist.enabled() && o.dist.rank != 0) return;  // rank 0 reports
    std::cout << "\n" << (s.interrupted ? "interrupted" : "finished") << ": " << s.iterations << " iterations, "
              << s.images_seen << " images in " << std::fixed << std::setprecision(1) << s.seconds << " s ("
              << s.images_per_second << " images/s)\n";
    if (s.best_map >= 0)
      std::cout << "best mAP " << std::setprecision(4) << s.best_map << " at iteration " << s.best_iteration << " ("
                << s.run_dir << "/best.ckpt); last mAP " << s.final_map << "\n";
    std::cout << "run folder: " << s.run_dir << " (metrics.csv, eval.csv, loss.png, map.png, last.ckpt, best.ckpt)\n";
    if (s.interrupted) std::cout << "resume with: yolo2 train --resume " << s.run_dir << "/last.ckpt\n";
  });
}

}  // namespace yolo2::cli
