// The run folder of a training run (train.output, default runs/<train.name>):
//   config.yaml   the resolved config          metrics.csv  one row per iteration
//   last.ckpt     every train.checkpoint_every  eval.csv     one row per evaluation
//   best.ckpt     best test mAP so far          loss.png, map.png
//   .yolo2.lock   held (flock) while a process trains in the folder; holds its PID
// Only the main rank writes it. yolo2 writes into an empty or missing folder or into its own run
// folder (one whose config.yaml yolo2 wrote), deletes only the files above and their temporaries,
// and never another file.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "yolo2/config.hpp"

namespace yolo2::train {

struct RunFolder {
  std::string dir;
  std::string file(const std::string& name) const;  // dir/name
  std::string last() const { return file("last.ckpt"); }
  std::string best() const { return file("best.ckpt"); }
};

// The files yolo2 writes in a run folder (the only ones --overwrite deletes).
const std::vector<std::string>& run_files();
// TensorBoard's event files that yolo2 writes in a run folder: events.out.tfevents.<time>.<pid>.<n>.yolo2
// (one per process of a run; train/tensorboard_hook.cpp).
bool is_tensorboard_file(const std::string& name);

// The folder of a run: a branch's folder, else the resumed checkpoint's folder, else train.output,
// else runs/<train.name>.
RunFolder locate_run_folder(const Config& config, const std::string& resume, const std::string& branch = "");

// An exclusive lock on a run folder (flock on .yolo2.lock), released when destroyed or when the
// process ends however it ends.
class RunLock {
 public:
  explicit RunLock(int fd) : fd_(fd) {}
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_;
};

// Before anything is loaded: creates the folder if needed and locks it; refuses, deleting nothing,
// a folder another process holds (naming its PID), a non-empty folder that is not a yolo2 run
// folder (also to resume into: a checkpoint copied out of its run folder resumes with a branch),
// and a run folder that holds a run when neither resuming nor `overwrite`.
std::unique_ptr<RunLock> claim_run_folder(const RunFolder& folder, bool resuming, bool overwrite);

// After the config, the data and the model were checked: removes the temporaries interrupted writes
// of yolo2's files left, a fresh run's old results (yolo2's files only), and writes config.yaml
// (headed by the build it runs with, which marks the folder as yolo2's).
void prepare_run_folder(const RunFolder& folder, const Config& config, bool resuming);

// A branch (resume into a new folder): the logs and the best checkpoint of the run so far, copied
// from the resumed checkpoint's folder when that is a yolo2 run folder (each atomically; what is
// missing there is skipped; nothing from a folder that is not a run folder).
void copy_run_history(const RunFolder& from, const RunFolder& to);

}  // namespace yolo2::train
