// The run folder of a training run (train.output, default runs/<train.name>):
//   config.yaml   the resolved config          metrics.csv  one row per iteration
//   last.ckpt     every train.checkpoint_every  eval.csv     one row per evaluation
//   best.ckpt     best test mAP so far          loss.png, map.png
// Only the main rank writes it.
#pragma once

#include <string>

#include "yolo2/config.hpp"

namespace yolo2::train {

struct RunFolder {
  std::string dir;
  std::string file(const std::string& name) const;  // dir/name
  std::string last() const { return file("last.ckpt"); }
  std::string best() const { return file("best.ckpt"); }
};

// The folder of a run: the resumed checkpoint's folder, else train.output, else runs/<train.name>.
RunFolder locate_run_folder(const Config& config, const std::string& resume);

// Makes the folder ready: refuses to start afresh over a run (its last.ckpt) unless `overwrite`,
// removes temporaries an interrupted write left, clears a fresh run's results, and writes
// config.yaml (headed by the build it ran with).
void prepare_run_folder(const RunFolder& folder, const Config& config, bool resuming, bool overwrite);

}  // namespace yolo2::train
