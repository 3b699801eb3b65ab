// `yolo2 info`: the network as a darknet-style layer table.
#include <iostream>

#include "verbs.hpp"
#include "yolo2/io/darknet.hpp"
#include "yolo2/model/yolov2.hpp"

namespace yolo2::cli {

void add_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Print the network: darknet-style layers, shapes, BFLOPs, parameters");
  auto flags = std::make_shared<ConfigFlags>();
  flags->add(cmd, false);
  auto size = std::make_shared<int>(0);
  cmd->add_option("--size", *size, "Input size (default: data.input_size)")->check(input_side());
  cmd->callback([=] {
    const Config config = flags->load();
    const int s = *size > 0 ? *size : config.data.input_size;
    model::YoloV2 net(model::network_spec(config.model, static_cast<int>(config.data.classes.size())));
    std::cout << model::format_layer_table(model::infer_shapes(net->spec(), s, s));
    std::cout << "parameters: " << model::parameter_count(*net)
              << " trainable; darknet .weights body: " << io::darknet_weight_floats(net->spec()) << " floats; input "
              << s << "x" << s << ", " << config.data.classes.size() << " classes, " << net->spec().num_anchors()
              << " anchors, width " << config.model.width << "\n";
  });
}

}  // namespace yolo2::cli
