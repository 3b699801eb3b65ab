// `yolo2 export`: a checkpoint as darknet .cfg + .weights, or its first N layers as a prefix file
// (darknet's `partial`, e.g. darknet19_448.conv.23 from a pretrained classifier).
#include <spdlog/spdlog.h>

#include <filesystem>
#include <string>
#include <vector>

#include "verbs.hpp"
#include "yolo2/error.hpp"
#include "yolo2/io/darknet.hpp"
#include "yolo2/io/inference.hpp"

namespace yolo2::cli {

void add_export(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Write a checkpoint as darknet PREFIX.cfg + PREFIX.weights (v0.2)");
  auto ckpt = std::make_shared<std::string>();
  auto prefix = std::make_shared<std::string>();
  auto layers = std::make_shared<int>(0);
  cmd->add_option("--checkpoint", *ckpt, "yolo2 checkpoint")->required()->check(CLI::ExistingFile);
  cmd->add_option("--darknet", *prefix, "Output prefix (writes PREFIX.cfg and PREFIX.weights; with --prefix, the file)")
      ->required();
  cmd->add_option("--prefix", *layers,
                  "Write only the weights of the first N layers to the file --darknet names, as darknet's `partial` "
                  "(seen = 0): `--prefix 23` of a pretrained classifier is the darknet19_448.conv.23 that "
                  "train.init_weights takes")
      ->check(CLI::Range(1, 1000));
  cmd->callback([=] {
    // Before anything is read or written: the outputs are files, and none of them is the input.
    const std::vector<std::string> outputs = *layers > 0
                                                 ? std::vector<std::string>{*prefix}
                                                 : std::vector<std::string>{*prefix + ".cfg", *prefix + ".weights"};
    if (prefix->empty() || prefix->back() == '/' || std::filesystem::is_directory(*prefix))
      throw Error("export --darknet " + *prefix + ": a file name prefix is needed (e.g. " +
                  (std::filesystem::path(*prefix) / "yolov2").string() + "), not a folder");
    for (const auto& out : outputs) {
      std::error_code ec;
      if (std::filesystem::exists(out, ec) && std::filesystem::equivalent(out, *ckpt, ec))
        throw Error("export: " + out + " is the input checkpoint " + *ckpt +
                    ": writing it would destroy the checkpoint; pick another --darknet (nothing was written)");
    }
    io::InferenceSource src;
    src.checkpoint = *ckpt;
    src.to_device = false;
    src.detector = false;  // a pretrained classifier exports too
    io::InferenceModel im = io::load_for_inference(src);
    if (*layers > 0) {
      const int total = static_cast<int>(im.model->spec().layers.size());
      if (*layers > total)
        throw Error("export --prefix " + std::to_string(*layers) + ": " + *ckpt + "'s network has only " +
                    std::to_string(total) + " layers");
      io::save_darknet_weights(*im.model, *prefix, 0, *layers);
      spdlog::info("export: wrote {} (layers 0-{}, {} floats, seen = 0)", *prefix, *layers - 1,
                   io::darknet_weight_floats(im.model->spec(), *layers));
      return;
    }
    io::export_darknet(*im.model, im.config, *prefix, im.seen);
    spdlog::info("export: wrote {}.cfg and {}.weights (seen = {})", *prefix, *prefix, im.seen);
  });
}

}  // namespace yolo2::cli
