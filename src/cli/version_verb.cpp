// `yolo2 version`: yolo2's version and what it was built with (LibTorch, CUDA, cuDNN, NCCL, oneDNN,
// OpenCV, compiler) and the GPUs it sees.
#include <iostream>
#include <memory>

#include "verbs.hpp"
#include "yolo2/runtime/build_info.hpp"

namespace yolo2::cli {

void add_version(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("version", "Print yolo2's version, the libraries it was built with and the visible GPUs");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "As one JSON object");
  cmd->callback([=] {
    const runtime::BuildInfo info = runtime::build_info();
    std::cout << (*json ? runtime::to_json(info) + "\n" : runtime::to_text(info));
  });
}

}  // namespace yolo2::cli
