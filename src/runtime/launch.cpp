#include "yolo2/runtime/launch.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>
#include <utility>

#include "yolo2/error.hpp"

namespace yolo2::runtime {

namespace {

std::atomic<int> g_forward_signal{0};

extern "C" void on_launcher_signal(int sig) { g_forward_signal.store(sig); }

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  return "stopped";
}

}  // namespace

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("cannot open a socket to find a free port: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw Error("cannot find a free port on 127.0.0.1: " + why);
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::vector<std::string> own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  std::string cur;
  for (char c : all) {
    if (c == '\0')
      args.push_back(cur), cur.clear();
    else
      cur += c;
  }
  if (!cur.empty()) args.push_back(cur);
  return args;
}

namespace {

// execv's argument vector; it points into `executable` and `args`, which must outlive it.
std::vector<char*> exec_argv(const std::string& executable, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(executable.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  return argv;
}

// In the forked child: become rank `rank` of the job and run the program; never returns.
[[noreturn]] void exec_rank(const std::string& executable, std::vector<char*>& argv, const LaunchOptions& o, int rank,
                            int port, pid_t parent) {
  // Own process group: a terminal Ctrl-C reaches the launcher only, which passes it on once.
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) ::_exit(1);  // the launcher died before prctl
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
  ::setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
  ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  ::execv(executable.c_str(), argv.data());
  std::fprintf(stderr, "launch: cannot run %s: %s\n", executable.c_str(), std::strerror(errno));
  ::_exit(127);
}

// The launcher's view of its ranks while it waits for them. One failure stops the job: the
// others get SIGTERM after the grace period (to save and stop), and SIGKILL after twice it.
class RankWatch {
 public:
  using clock = std::chrono::steady_clock;

  RankWatch(std::vector<pid_t> pids, double grace_seconds)
      : pids_(std::move(pids)), alive_(static_cast<int>(pids_.size())), grace_(grace_seconds) {}

  int alive() const { return alive_; }
  int result() const { return result_; }
  int first_failed() const { return first_failed_; }

  // A SIGINT / SIGTERM the launcher caught goes to every rank, once.
  void forward_signal(int sig) {
    if (sig == 0 || forwarded_) return;
    forwarded_ = true;
    spdlog::warn("launch: signal {} received: passing it on to the ranks (they save and stop)", sig);
    for (pid_t p : pids_)
      if (p > 0) ::kill(p, sig);
  }

  // Records that `pid` ended with `status`; the first failure decides the job's exit status.
  void reap(pid_t pid, int status) {
    for (int r = 0; r < static_cast<int>(pids_.size()); ++r) {
      if (pids_[static_cast<std::size_t>(r)] != pid) continue;
      pids_[static_cast<std::size_t>(r)] = -1;
      --alive_;
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (!ok && first_failed_ < 0) {
        first_failed_ = r;
        result_ = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
        failed_at_ = clock::now();
        spdlog::error("launch: rank {} {}; stopping the job", r, describe_status(status));
      } else if (!ok) {
        spdlog::error("launch: rank {} {}", r, describe_status(status));
      }
    }
  }

  // After a failure, ranks still running are stopped, politely first.
  void stop_survivors() {
    if (first_failed_ < 0 || alive_ <= 0) return;
    const double since = std::chrono::duration<double>(clock::now() - failed_at_).count();
    if (!terminated_ && since > grace_) {
      terminated_ = true;
      for (int r = 0; r < static_cast<int>(pids_.size()); ++r)
        if (pids_[static_cast<std::size_t>(r)] > 0) {
          spdlog::warn("launch: rank {} still running {:.0f} s after rank {} failed: SIGTERM", r, since, first_failed_);
          ::kill(pids_[static_cast<std::size_t>(r)], SIGTERM);
        }
    } else if (terminated_ && !killed_ && since > 2 * grace_) {
      killed_ = true;
      for (pid_t p : pids_)
        if (p > 0) ::kill(p, SIGKILL);
    }
  }

 private:
  std::vector<pid_t> pids_;  // -1 once reaped
  int alive_;
  double grace_;
  int result_ = 0, first_failed_ = -1;
  bool forwarded_ = false, terminated_ = false, killed_ = false;
  clock::time_point failed_at_{};
};

// Polls rather than blocking in waitpid so that a forwarded signal and the grace period are
// handled while the ranks run.
void supervise(RankWatch& watch) {
  while (watch.alive() > 0) {
    watch.forward_signal(g_forward_signal.load());
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      watch.reap(pid, status);
      continue;
    }
    watch.stop_survivors();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

int launch_local(const std::string& executable, const std::vector<std::string>& args, const LaunchOptions& o) {
  if (o.nproc < 1) throw Error("--nproc must be at least 1, got " + std::to_string(o.nproc));
  const int port = o.master_port > 0 ? o.master_port : free_local_port();
  spdlog::info("launch: {} local ranks, rendezvous {}:{}", o.nproc, o.master_addr, port);
  std::vector<char*> argv = exec_argv(executable, args);

  g_forward_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_launcher_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {
  }, old_term{};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  const pid_t parent = ::getpid();
  std::vector<pid_t> pids(static_cast<std::size_t>(o.nproc), -1);
  for (int r = 0; r < o.nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) throw Error(std::string("launch: fork failed: ") + std::strerror(errno));
    if (pid == 0) exec_rank(executable, argv, o, r, port, parent);
    pids[static_cast<std::size_t>(r)] = pid;
  }
  RankWatch watch(std::move(pids), o.grace_seconds);
  supervise(watch);
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (watch.first_failed() >= 0)
    spdlog::error(
        "launch: the job failed (rank {} first); the run folder's last.ckpt is the last complete "
        "checkpoint",
        watch.first_failed());
  return watch.result();
}

std::vector<std::string> rank_command_line(const std::vector<std::string>& args, int threads, int nproc) {
  std::vector<std::string> child;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0) continue;
    child.push_back(args[i]);
  }
  child.push_back("--set");
  child.push_back("runtime.threads=" + std::to_string(std::max(1, threads / std::max(1, nproc))));
  return child;
}

}  // namespace yolo2::runtime
