// yolo2: train, evaluate and run YOLOv2 detectors on Pascal VOC-format data.
#include <c10/util/Exception.h>
#include <spdlog/spdlog.h>
#include <torch/version.h>

#include <iostream>
#include <sstream>
#include <string>

#include "verbs.hpp"
#include "yolo2/error.hpp"
#include "yolo2/runtime/setup.hpp"

namespace yolo2::cli {
namespace {
int g_exit_status = 0;
}  // namespace
void set_exit_status(int status) { g_exit_status = status; }

CLI::Validator number_in(double lo, double hi) {
  std::ostringstream os;
  os << "[" << lo << ", " << hi << "]";
  const std::string range = os.str();
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(text, v)) return "'" + text + "' is not a number";
        if (!(v >= lo && v <= hi)) return "'" + text + "' is not in " + range;
        return {};
      },
      "NUMBER in " + range);
}

CLI::Validator whole_number_from(long lo) {
  const std::string what = "a whole number >= " + std::to_string(lo);
  return CLI::Validator(
      [lo, what](std::string& text) -> std::string {
        long long v = 0;
        unsigned long long big = 0;  // past long long's range (a 64-bit seed)
        const bool ok = CLI::detail::lexical_cast(text, v) ? v >= lo : lo >= 0 && CLI::detail::lexical_cast(text, big);
        if (!ok) return "'" + text + "' is not " + what;
        return {};
      },
      "INT >= " + std::to_string(lo));
}

CLI::Validator input_side() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        long v = 0;
        if (!CLI::detail::lexical_cast(text, v) || v < 32 || v > 8192 || v % 32 != 0)
          return "'" + text + "' is not an input size (a multiple of 32, 32 to 8192)";
        return {};
      },
      "SIDE (multiple of 32)");
}
int exit_status() { return g_exit_status; }
}  // namespace yolo2::cli

int main(int argc, char** argv) {
  CLI::App app{"yolo2: YOLOv2 (Darknet19) detector training with focal loss, and a Pascal VOC mAP evaluator"};
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Debug logging (also accepted after the verb)");
  // Set before the verbs are added, which inherit it: a verb passes the options it does not know
  // (--verbose) up to here, so `yolo2 train -v` works as `yolo2 -v train` does.
  app.fallthrough();
  // Runs once every option is parsed and before the verb's callback, so that the verb logs at the
  // requested level.
  app.parse_complete_callback([&] {
    yolo2::runtime::setup_logging(verbose);
    std::string command = "yolo2";
    for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
    spdlog::debug("yolo2 {} (LibTorch {}): {}", YOLO2_VERSION, TORCH_VERSION, command);
  });
  app.set_version_flag("--version", "yolo2 " YOLO2_VERSION);
  yolo2::cli::add_config(app);
  yolo2::cli::add_synth(app);
  yolo2::cli::add_training_verbs(app);  // train, pretrain (train/tasks.hpp)
  yolo2::cli::add_eval(app);
  yolo2::cli::add_detect(app);
  yolo2::cli::add_stats(app);
  yolo2::cli::add_anchors(app);
  yolo2::cli::add_info(app);
  yolo2::cli::add_export(app);
  yolo2::cli::add_bench(app);
  yolo2::cli::add_version(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message; a usage error (unknown flag, bad value) exits 2, as getopt and
    // argparse programs do (CLI11's own codes, 105 and up, would mean nothing to a script).
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const yolo2::Error& e) {
    spdlog::error("{}", e.what());
    return 1;
  } catch (const c10::Error& e) {
    spdlog::error("{}", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return yolo2::cli::exit_status();
}
