// `yolo2 info` (darknet-style layer table) and `yolo2 export` (darknet .cfg + .weights).
#include <spdlog/spdlog.h>

#include <iostream>

#include "verbs.hpp"
#include "yolo2/model/darknet_io.hpp"
#include "yolo2/model/yolov2.hpp"
#include "yolo2/train/checkpoint.hpp"

namespace yolo2::cli {

void add_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Print the network: darknet-style layers, shapes, BFLOPs, parameters");
  auto flags = std::make_shared<ConfigFlags>();
  flags->add(cmd, false);
  auto size = std::make_shared<int>(0);
  cmd->add_option("--size", *size, "Input size (default: data.input_size)");
  cmd->callback([=] {
    const Config config = flags->load();
    const int s = *size > 0 ? *size : config.data.input_size;
    model::YoloV2 net(model::yolov2_spec(config.model, static_cast<int>(config.data.classes.size())));
    std::cout << model::format_layer_table(model::layer_table(net->spec(), s, s));
    std::cout << "parameters: " << model::parameter_count(*net) << " trainable; darknet .weights body: "
              << model::darknet_weight_floats(net->spec()) << " floats; input " << s << "x" << s << ", "
              << config.data.classes.size() << " classes, " << net->spec().num_anchors() << " anchors, width "
              << config.model.width << "\n";
  });
}

void add_export(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Write a checkpoint as darknet PREFIX.cfg + PREFIX.weights (v0.2)");
  auto ckpt = std::make_shared<std::string>();
  auto prefix = std::make_shared<std::string>();
  cmd->add_option("--checkpoint", *ckpt, "yolo2 checkpoint")->required()->check(CLI::ExistingFile);
  cmd->add_option("--darknet", *prefix, "Output prefix (writes PREFIX.cfg and PREFIX.weights)")->required();
  cmd->callback([=] {
    auto ck = train::load_checkpoint(*ckpt);
    const uint64_t seen = ck.state ? static_cast<uint64_t>(ck.state->images_seen) : 0;
    model::export_darknet(*ck.model, ck.config, *prefix, seen);
    spdlog::info("export: wrote {}.cfg and {}.weights (seen = {})", *prefix, *prefix, seen);
  });
}

}  // namespace yolo2::cli
