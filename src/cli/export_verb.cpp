// `yolo2 export`: a checkpoint as darknet .cfg + .weights.
#include <spdlog/spdlog.h>

#include "verbs.hpp"
#include "yolo2/model/darknet_io.hpp"
#include "yolo2/train/inference.hpp"

namespace yolo2::cli {

void add_export(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Write a checkpoint as darknet PREFIX.cfg + PREFIX.weights (v0.2)");
  auto ckpt = std::make_shared<std::string>();
  auto prefix = std::make_shared<std::string>();
  cmd->add_option("--checkpoint", *ckpt, "yolo2 checkpoint")->required()->check(CLI::ExistingFile);
  cmd->add_option("--darknet", *prefix, "Output prefix (writes PREFIX.cfg and PREFIX.weights)")->required();
  cmd->callback([=] {
    train::InferenceSource src;
    src.checkpoint = *ckpt;
    src.to_device = false;
    train::InferenceModel im = train::load_for_inference(src);
    model::export_darknet(*im.model, im.config, *prefix, im.seen);
    spdlog::info("export: wrote {}.cfg and {}.weights (seen = {})", *prefix, *prefix, im.seen);
  });
}

}  // namespace yolo2::cli
