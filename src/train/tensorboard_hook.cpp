// TensorBoard event files in the run folder (train.tensorboard): the metrics.csv columns as scalars
// train/<column> at each iteration, the evaluation's eval.csv columns as eval/<column>, and the
// loss, score and precision-recall plots as images plots/<name>. Values are the CSV's (8 significant
// digits) as float32, so TensorBoard shows what the files hold.
//
// Nothing is lost or written twice across a resume: the records wait in memory and go to the file
// when last.ckpt is written (and at the end), as metrics.csv does, so a file never holds a step
// past the last checkpoint; a resumed process starts a new file (events.out.tfevents.<time>.<pid>.<n>
// .yolo2, sorted after the earlier ones) from the checkpoint's step on, and TensorBoard joins them
// into one curve. A resumed file starts with SessionLog START at the checkpoint's step + 1, on which
// TensorBoard's loader drops the earlier files' points from that step on: where a file went past its
// checkpoint (killed while the background save of last.ckpt ran, or resumed from best.ckpt), the
// resumed run's points replace them.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "csv_table.hpp"
#include "metrics_row.hpp"
#include "yolo2/error.hpp"
#include "yolo2/interop/tensorboard.hpp"
#include "yolo2/train/hooks.hpp"

namespace yolo2::train {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A PNG's width and height from its IHDR chunk (bytes 16-23, big-endian); false when it is no PNG.
bool png_size(const std::string& png, int& width, int& height) {
  static const char kMagic[] = "\x89PNG\r\n\x1a\n";
  if (png.size() < 24 || png.compare(0, 8, kMagic, 8) != 0 || png.compare(12, 4, "IHDR") != 0) return false;
  const auto be32 = [&](std::size_t at) {
    uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(png[at + i]);
    return static_cast<int>(v);
  };
  width = be32(16), height = be32(20);
  return width > 0 && height > 0;
}

class TensorBoardHook : public Hook {
 public:
  void before_train(Trainer& t) override {
    if (!t.main_rank() || !t.config().train.tensorboard) return;
    // events.out.tfevents.<time>.<pid>.<n>.yolo2, n counting up past an existing file (a run resumed
    // within the same second by the same process, as a test does).
    const auto secs = static_cast<long long>(now_seconds());
    for (int n = 0; path_.empty() || std::filesystem::exists(path_); ++n)
      path_ = t.parts().folder.file(fmt::format("events.out.tfevents.{:010d}.{}.{}.yolo2", secs, ::getpid(), n));
    columns_ = metrics_columns(t);
    // Resumed: TensorBoard's loader drops any point of the earlier files past the checkpoint (a
    // background save cut short, or a resume from best.ckpt) when it meets this record.
    if (const int64_t it = t.state().iteration; it > 0)
      pending_ = interop::tb_session_start_record(now_seconds(), it + 1, t.parts().folder.last());
    spdlog::info("tensorboard: {} (tensorboard --logdir {})", path_, t.parts().folder.dir);
  }
  void after_scalars(Trainer& t, const StepRecord& s) override {
    if (path_.empty()) return;
    const std::vector<double> row = metrics_row(t, s);
    const double wall = now_seconds();
    for (std::size_t i = 1; i < row.size() && i < columns_.size(); ++i)  // column 0 is the step
      pending_ +=
          interop::tb_scalar_record(wall, s.iteration, "train/" + columns_[i], static_cast<float>(csv_value(row[i])));
  }
  void after_eval(Trainer& t) override {
    if (path_.empty()) return;
    const int64_t it = t.state().iteration;
    CsvTable eval{{}, {}};  // the file's own columns
    eval.load(t.parts().folder.file("eval.csv"), it);
    const double wall = now_seconds();
    if (!eval.rows.empty() && static_cast<int64_t>(eval.rows.back().at(0)) == it) {
      const std::vector<double>& row = eval.rows.back();
      for (std::size_t i = 2; i < row.size() && i < eval.header.size(); ++i)  // after iteration, epoch
        pending_ += interop::tb_scalar_record(wall, it, "eval/" + eval.header[i], static_cast<float>(row[i]));
    }
    add_plots(t, it, wall);
  }
  void before_save(Trainer& t) override {
    // The end's pictures, once: the final evaluation (which comes after this hook's after_train)
    // logs them at its step; without one, the last save does.
    if (ending_ && plotted_step_ != t.state().iteration) add_plots(t, t.state().iteration, now_seconds());
    flush();
  }
  void after_train(Trainer& t) override {
    if (path_.empty() || t.summary().interrupted) return;
    ending_ = true;
    flush();
  }

 private:
  void add_plots(Trainer& t, int64_t step, double wall) {
    plotted_step_ = step;
    for (const char* name : {"loss.png", "map.png", "accuracy.png", "pr.png"}) {
      const std::string file = t.parts().folder.file(name);
      std::ifstream in(file, std::ios::binary);
      if (!in) continue;
      const std::string png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      int w = 0, h = 0;
      if (!png_size(png, w, h)) continue;
      const std::string stem = std::filesystem::path(name).stem().string();
      pending_ += interop::tb_image_record(wall, step, "plots/" + stem, png, h, w);
    }
  }
  // The file is made by the first flush (a run that fails before its first save leaves none), its
  // first record the file version. Appends the waiting records; a failure is logged and the records
  // kept for the next try (the event file is a view of the run, not a reason to stop it).
  void flush() {
    if (pending_.empty()) return;
    const std::string data = (started_ ? std::string() : interop::tb_file_version_record(now_seconds())) + pending_;
    std::error_code ec;
    const auto before = std::filesystem::exists(path_, ec) ? std::filesystem::file_size(path_, ec) : 0;
    std::FILE* f = std::fopen(path_.c_str(), "ab");
    const bool ok = f && std::fwrite(data.data(), 1, data.size(), f) == data.size() && std::fflush(f) == 0;
    const std::string reason = std::strerror(errno);
    if (f) std::fclose(f);
    if (!ok) {
      // A partial record would hide every later one from TensorBoard: back to the last whole record.
      if (f) std::filesystem::resize_file(path_, before, ec);
      spdlog::warn("tensorboard: cannot append to {}: {} (kept for the next save)", path_, reason);
      return;
    }
    started_ = true;
    pending_.clear();
  }

  std::string path_;  // empty: off (or not the main rank)
  std::vector<std::string> columns_;
  std::string pending_;
  int64_t plotted_step_ = -1;
  bool ending_ = false;
  bool started_ = false;  // the file holds its file-version record
};

}  // namespace

std::unique_ptr<Hook> tensorboard_hook() { return std::make_unique<TensorBoardHook>(); }

}  // namespace yolo2::train
