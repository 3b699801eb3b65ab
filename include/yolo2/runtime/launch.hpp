// `yolo2 train --nproc N`: starts N local ranks of the same command (torchrun's job on one machine)
// and supervises them.
#pragma once

#include <string>
#include <vector>

namespace yolo2::runtime {

struct LaunchOptions {
  int nproc = 2;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;        // 0: a free port
  double grace_seconds = 10;  // after a rank fails: time the others get to exit on their own
};

// Runs `executable args...` nproc times with RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and
// MASTER_PORT set. SIGINT/SIGTERM to the launcher are passed on once to every rank (each saves and
// exits); the ranks get SIGTERM if the launcher dies. When a rank exits non-zero or by a signal, the
// others get `grace_seconds` to stop by themselves (they see the broken group), then SIGTERM, then
// SIGKILL. Returns 0 when every rank succeeded, else the first failing rank's status (1 for a
// signal), after printing which rank failed and how.
int launch_local(const std::string& executable, const std::vector<std::string>& args, const LaunchOptions& options);

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_local_port();

// This process's command line (/proc/self/cmdline), argv[0] first.
std::vector<std::string> own_command_line();

// Each rank's command line for `--nproc N`: `args` (the verb and its flags, without the program)
// without `--nproc N` / `--nproc=N`, with `--set runtime.threads=T` added, T the job's `threads`
// shared by the N ranks (at least 1 each).
std::vector<std::string> rank_command_line(const std::vector<std::string>& args, int threads, int nproc);

}  // namespace yolo2::runtime
