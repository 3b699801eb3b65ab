#include "yolo2/train/run_folder.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "yolo2/error.hpp"
#include "yolo2/runtime/build_info.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::train {

namespace fs = std::filesystem;

namespace {

constexpr const char* kLockName = ".yolo2.lock";
constexpr const char* kConfigHead = "# yolo2 run configuration";

// A run folder is yolo2's when its config.yaml starts with the header yolo2 writes, or when it holds
// yolo2's lock (a run that has not reached its config.yaml yet).
bool is_run_folder(const fs::path& dir) {
  if (fs::exists(dir / kLockName)) return true;
  std::ifstream in(dir / "config.yaml");
  std::string first;
  return in && std::getline(in, first) && first.rfind(kConfigHead, 0) == 0;
}

// Results of an earlier run: anything yolo2 writes besides its lock and config.yaml.
std::vector<std::string> earlier_results(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& f : run_files())
    if (f != kLockName && f != "config.yaml" && fs::exists(dir / f)) found.push_back(f);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (is_tensorboard_file(e.path().filename().string())) found.push_back(e.path().filename().string());
  return found;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::unique_ptr<RunLock> lock_folder(const fs::path& dir) {
  const std::string path = (dir / kLockName).string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot open the run folder's lock: " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {0};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    if (err == EWOULDBLOCK)
      throw Error(dir.string() + " is in use by another yolo2 process (PID " +
                  (n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("unknown")) + ", holding " +
                  path + "): wait for it to end, or pick another --output");
    throw Error(path + ": cannot lock: " + std::strerror(err));
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    spdlog::warn("{}: cannot record the PID in the lock file: {}", path, std::strerror(errno));
  return std::make_unique<RunLock>(fd);
}

}  // namespace

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

const std::vector<std::string>& run_files() {
  static const std::vector<std::string> files = [] {
    std::vector<std::string> f{"config.yaml",        "last.ckpt", "best.ckpt",    "metrics.csv", "eval.csv",
                               "loss.png",           "map.png",   "accuracy.png", "pr.png",      "classifier.cfg",
                               "classifier.weights", kLockName};
    for (int n = 1; n <= 23; ++n) f.push_back("backbone.conv." + std::to_string(n));  // pretrain's detector prefix
    return f;
  }();
  return files;
}

bool is_tensorboard_file(const std::string& name) {
  const std::string head = "events.out.tfevents.", tail = ".yolo2";
  return name.size() > head.size() + tail.size() && name.rfind(head, 0) == 0 &&
         name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
}

std::string RunFolder::file(const std::string& name) const { return (fs::path(dir) / name).string(); }

RunFolder locate_run_folder(const Config& config, const std::string& resume, const std::string& branch) {
  std::string dir = !branch.empty()                ? branch
                    : !resume.empty()              ? fs::path(resume).parent_path().string()
                    : !config.train.output.empty() ? config.train.output
                                                   : (fs::path("runs") / config.train.name).string();
  return RunFolder{dir.empty() ? "." : dir};
}

std::unique_ptr<RunLock> claim_run_folder(const RunFolder& folder, bool resuming, bool overwrite) {
  const fs::path dir(folder.dir);
  std::error_code ec;
  if (fs::exists(dir) && !fs::is_directory(dir)) throw Error(folder.dir + ": exists and is not a folder");
  const bool fresh = !fs::exists(dir) || fs::is_empty(dir);
  if (!fresh && !is_run_folder(dir))
    throw Error(folder.dir + " is not empty and is not a yolo2 run folder (it has no config.yaml written by yolo2); " +
                "yolo2 leaves it untouched: " +
                (resuming ? "to resume a checkpoint kept outside its run folder, add --output NEW_FOLDER (the run "
                            "continues there)"
                          : "pick an empty or new --output"));
  fs::create_directories(dir, ec);
  if (ec) throw Error(folder.dir + ": cannot create the run folder: " + ec.message());
  std::unique_ptr<RunLock> lock = lock_folder(dir);
  const std::vector<std::string> earlier = earlier_results(dir);
  if (!resuming && !overwrite && !earlier.empty())
    throw Error(folder.dir + " already holds a run (" + join(earlier) + ")" +
                (fs::exists(folder.last()) ? ": resume it with --resume " + folder.last() + "," : ":") +
                " start afresh with --overwrite (deletes yolo2's files there, nothing else), or pick another --output");
  return lock;
}

void prepare_run_folder(const RunFolder& folder, const Config& config, bool resuming) {
  const fs::path dir(folder.dir);
  if (const int n = util::remove_stale_temporaries(dir.string(), run_files()))
    spdlog::info("removed {} temporary file(s) left by an interrupted write in {}", n, dir.string());
  if (!resuming) {
    const std::vector<std::string> earlier = earlier_results(dir);
    for (const auto& f : earlier) fs::remove(dir / f);
    if (!earlier.empty()) spdlog::info("overwrite: removed {} from {}", join(earlier), folder.dir);
  }
  util::write_file_atomic(
      folder.file("config.yaml"),
      std::string(kConfigHead) + "; built with:\n" + runtime::to_text(runtime::build_info(), "#   ") + to_yaml(config));
}

void copy_run_history(const RunFolder& from, const RunFolder& to) {
  if (!is_run_folder(from.dir)) {  // a checkpoint kept elsewhere: files there are not this run's logs
    spdlog::info("branch: the run continues in {}; {} is not a run folder, so no history is copied", to.dir, from.dir);
    return;
  }
  std::vector<std::string> files{"metrics.csv", "eval.csv", "best.ckpt"};
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(from.dir, ec))  // TensorBoard's curves up to the branch
    if (is_tensorboard_file(e.path().filename().string())) files.push_back(e.path().filename().string());
  std::vector<std::string> copied;
  for (const auto& f : files) {
    if (!fs::is_regular_file(from.file(f))) continue;
    util::write_file_atomic(to.file(f), util::read_file(from.file(f)));
    copied.push_back(f);
  }
  spdlog::info("branch: the run continues in {}; copied from {}: {}", to.dir, from.dir,
               copied.empty() ? std::string("nothing") : join(copied));
}

}  // namespace yolo2::train
