// `yolo2 anchors`: dimension clusters of the training boxes (data/anchors.hpp), printed beside the
// config's anchors and in the config's model.anchors form.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "verbs.hpp"
#include "yolo2/data/anchors.hpp"
#include "yolo2/data/dataset.hpp"
#include "yolo2/error.hpp"
#include "yolo2/options.hpp"

namespace yolo2::cli {

namespace {

std::vector<data::BoxShape> pairs(const std::vector<double>& flat) {
  std::vector<data::BoxShape> out;
  for (std::size_t i = 0; i + 1 < flat.size(); i += 2) out.push_back({flat[i], flat[i + 1]});
  return out;
}

// "[w0, h0, w1, h1, ...]" with 4 decimals (darknet's cfgs give 4 to 5).
std::string anchor_list(const std::vector<data::BoxShape>& anchors) {
  std::string s = "[";
  char buf[64];
  for (std::size_t i = 0; i < anchors.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%s%.4f, %.4f", i ? ", " : "", anchors[i].w, anchors[i].h);
    s += buf;
  }
  return s + "]";
}

void print_table(const std::vector<data::BoxShape>& anchors, const std::vector<data::BoxShape>& boxes) {
  std::vector<int64_t> members(anchors.size(), 0);
  for (const auto& b : boxes) {
    std::size_t best = 0;
    for (std::size_t a = 1; a < anchors.size(); ++a)
      if (data::shape_iou(b, anchors[a]) > data::shape_iou(b, anchors[best])) best = a;
    ++members[best];
  }
  std::printf("  %-6s %10s %10s %10s %10s %8s\n", "anchor", "w (cells)", "h (cells)", "w (px)", "h (px)", "boxes");
  for (std::size_t a = 0; a < anchors.size(); ++a)
    std::printf("  %-6zu %10.4f %10.4f %10.1f %10.1f %8lld\n", a, anchors[a].w, anchors[a].h, anchors[a].w * 32,
                anchors[a].h * 32, static_cast<long long>(members[a]));
}

}  // namespace

void add_anchors(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "anchors", "Dimension clusters (YOLOv2 paper, section 2): k-means with 1 - IoU on the training boxes");
  auto flags = std::make_shared<ConfigFlags>();
  flags->add(cmd, false);
  auto k = std::make_shared<int>(5);
  auto seed = std::make_shared<uint64_t>(0);
  auto restarts = std::make_shared<int>(5);
  auto size = std::make_shared<int>(0);
  auto root = std::make_shared<std::string>();
  auto split = std::make_shared<std::string>();
  auto classes = std::make_shared<std::string>();
  cmd->add_option("-k,--clusters", *k, "Number of anchors")->capture_default_str()->check(CLI::Range(1, 100));
  cmd->add_option("--seed", *seed, "k-means++ seed (the result is a function of the boxes and the seed)")
      ->capture_default_str();
  cmd->add_option("--restarts", *restarts, "k-means runs from seeds seed, seed+1, ...; the best mean IoU is kept")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--size", *size, "Network input size the anchors are for (default: data.input_size)")
      ->check(input_side());
  cmd->add_option("--data", *root, "A VOC root (instead of the config's data.train)");
  cmd->add_option("--split", *split, "With --data: the image set (e.g. trainval)");
  cmd->add_option("--classes", *classes, "With --data: comma-separated class names");
  cmd->callback([=] {
    const Config config = flags->load();
    const int input = *size > 0 ? *size : config.data.input_size;
    // The training rule (difficult objects dropped unless data.train_difficult): the boxes the
    // anchors will be matched to.
    data::ParseOptions po = parse_options(config, true);
    std::vector<DatasetSplit> splits = config.data.train;
    if (!root->empty()) {
      if (split->empty()) throw Error("anchors: --data needs --split");
      po = parse_options(config, true, classes_for_root({*root, *split}, *classes, config));
      splits = {{*root, *split}};
    }
    const data::Dataset ds = data::load_dataset(splits, po);
    const std::vector<data::BoxShape> boxes = data::box_shapes(ds, input);
    const auto t0 = std::chrono::steady_clock::now();
    const data::AnchorClusters clusters = data::dimension_clusters(boxes, *k, *seed, *restarts);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%zu boxes from %zu images at %d px (a %d x %d grid); k %d, seed %llu, %d restarts: %.3f s\n",
                boxes.size(), ds.images.size(), input, input / 32, input / 32, *k,
                static_cast<unsigned long long>(*seed), *restarts, seconds);
    std::printf("clusters (sorted by area; px at %d):\n", input);
    print_table(clusters.anchors, boxes);
    std::printf("mean IoU of each box with its best anchor: %.4f (clusters)", clusters.mean_iou);
    const std::vector<data::BoxShape> current = pairs(config.model.anchors);
    if (!current.empty())
      std::printf(", %.4f (the config's %zu model.anchors)", data::mean_best_iou(boxes, current), current.size());
    const std::string list = anchor_list(clusters.anchors);
    std::printf("\n\nin a config:\n  model:\n    anchors: %s\nor on the command line:\n  --set 'model.anchors=%s'\n",
                list.c_str(), list.c_str());
  });
}

}  // namespace yolo2::cli
