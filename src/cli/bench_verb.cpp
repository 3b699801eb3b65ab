// `yolo2 bench`: parses the flags, runs yolo2::bench and prints its table (and JSON).
#include <array>
#include <iostream>

#include "verbs.hpp"
#include "yolo2/bench/bench.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::cli {

void add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench",
                                 "Measure speed on runtime.device in runtime.precision: reference convolution, "
                                 "training iteration and memory, forward (CPU: vs OpenCV DNN), data loader, "
                                 "decode + NMS, VOC scoring");
  auto flags = std::make_shared<ConfigFlags>();
  flags->add(cmd, true);
  auto opt = std::make_shared<bench::BenchOptions>();
  auto json = std::make_shared<std::string>();
  auto skip = std::make_shared<std::array<bool, 4>>();  // loader, opencv, train, onnxruntime
  cmd->add_option("--batches", opt->batches, "Loader batches measured after warm-up")->capture_default_str();
  cmd->add_option("--repeats", opt->repeats, "Timed repeats per measurement (median)")->capture_default_str();
  cmd->add_option("--json", *json, "Write the figures as JSON (schema docs/bench-schema.json) to this file");
  cmd->add_flag("--no-loader", (*skip)[0], "Skip the loader (needs the config's training data)");
  cmd->add_flag("--no-opencv", (*skip)[1], "Skip the OpenCV DNN comparison");
  cmd->add_flag("--no-train", (*skip)[2], "Skip the training iteration");
  cmd->add_flag("--no-onnxruntime", (*skip)[3],
                "Skip the ONNX Runtime comparison (run through python3 where onnxruntime is importable)");
  cmd->add_flag("--both-layouts", opt->both_layouts,
                "Also measure the reference convolution and the training iteration in the other memory format "
                "(NCHW / channels-last NHWC) than runtime.channels_last");
  cmd->callback([=] {
    bench::BenchOptions o = *opt;
    o.loader = !(*skip)[0], o.opencv = !(*skip)[1], o.train = !(*skip)[2], o.onnxruntime = !(*skip)[3];
    const bench::BenchReport report = bench::run_bench(flags->load(), o);
    std::cout << bench::format_table(report);
    if (!json->empty()) util::write_file_atomic(*json, bench::to_json(report));
  });
}

}  // namespace yolo2::cli
