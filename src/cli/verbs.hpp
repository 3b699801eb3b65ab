// One function per CLI verb; each registers its subcommand and flags on the app. The verbs parse
// flags, load the config and call the library: no logic a test would need lives here.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "yolo2/config.hpp"

namespace yolo2::cli {

void add_config(CLI::App& app);
void add_synth(CLI::App& app);
void add_stats(CLI::App& app);
void add_anchors(CLI::App& app);
void add_bench(CLI::App& app);
void add_info(CLI::App& app);
void add_export(CLI::App& app);
void add_training_verbs(CLI::App& app);  // one per training task (train, pretrain)
void add_eval(CLI::App& app);
void add_detect(CLI::App& app);
void add_version(CLI::App& app);

// A number in [lo, hi] (CLI::Range lets NaN through; this does not): for thresholds such as --conf.
CLI::Validator number_in(double lo, double hi);
// A whole number from lo up (CLI::PositiveNumber's message prints its bound as a 300-digit number).
CLI::Validator whole_number_from(long lo);
// A network input side: a positive multiple of 32 (the detector's stride).
CLI::Validator input_side();

// The exit status of the program when the verb returns normally (default 0): training stopped by
// SIGINT / SIGTERM sets 130 / 143 after saving.
void set_exit_status(int status);
int exit_status();

// Class names for a bare dataset root (--data): the flag's comma list, else the dataset's own (a
// VOC root's classes.txt, darknet's names, COCO's categories), else the config's.
std::vector<std::string> classes_for_root(const DatasetSplit& entry, const std::string& classes_flag,
                                          const Config& config);

// --config FILE and repeated --set key=value, shared by the verbs that take a config.
struct ConfigFlags {
  std::string path;
  std::vector<std::string> overrides;
  void add(CLI::App* cmd, bool required);
  Config load() const;  // defaults when no file was given
};

}  // namespace yolo2::cli
