// `yolo2 train`: train a detector (from scratch, darknet weights or a checkpoint), or resume a run.
#include <spdlog/spdlog.h>

#include <iomanip>
#include <iostream>

#include "verbs.hpp"
#include "yolo2/error.hpp"
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
  cmd->callback([=] {
    train::TrainOptions o = *opt;
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
