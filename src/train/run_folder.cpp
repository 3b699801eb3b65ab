#include "yolo2/train/run_folder.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "yolo2/error.hpp"
#include "yolo2/util/atomic_file.hpp"
#include "yolo2/util/build_info.hpp"

namespace yolo2::train {

namespace fs = std::filesystem;

std::string RunFolder::file(const std::string& name) const { return (fs::path(dir) / name).string(); }

RunFolder locate_run_folder(const Config& config, const std::string& resume) {
  std::string dir = !resume.empty()                ? fs::path(resume).parent_path().string()
                    : !config.train.output.empty() ? config.train.output
                                                   : (fs::path("runs") / config.train.name).string();
  return RunFolder{dir.empty() ? "." : dir};
}

void prepare_run_folder(const RunFolder& folder, const Config& config, bool resuming, bool overwrite) {
  const fs::path dir(folder.dir);
  if (!resuming && fs::exists(folder.last()) && !overwrite)
    throw Error(folder.dir + " already holds a run (last.ckpt): resume it with --resume " + folder.last() +
                ", or start afresh with --overwrite, or pick another --output");
  fs::create_directories(dir);
  if (const int n = util::remove_stale_temporaries(dir.string()))
    spdlog::info("removed {} temporary file(s) left by an interrupted write in {}", n, dir.string());
  if (!resuming)
    for (const char* f : {"best.ckpt", "metrics.csv", "eval.csv", "loss.png", "map.png"}) fs::remove(dir / f);
  // The resolved config, headed by what the run was trained with (comments: parsers skip them).
  util::write_file_atomic(folder.file("config.yaml"), "# yolo2 run configuration; built with:\n" +
                                                          util::to_text(util::build_info(), "#   ") + to_yaml(config));
}

}  // namespace yolo2::train
