// `yolo2 stats`: images and objects per class and split, box sizes, and every problem handled.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "verbs.hpp"
#include "yolo2/data/dataset.hpp"
#include "yolo2/error.hpp"
#include "yolo2/options.hpp"

namespace yolo2::cli {

namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

std::vector<std::string> classes_for_root(const DatasetSplit& entry, const std::string& classes_flag,
                                          const Config& config) {
  return data::class_names_for_root(entry, split_list(classes_flag), config.data.classes);
}

namespace {

// The images load_dataset left out: with data.skip_bad_images (which --check-images sets) it decodes
// every image, so these are all the images that fail to decode.
std::vector<std::string> bad_images(const data::Dataset& ds) {
  std::vector<std::string> bad;
  for (const auto& issue : ds.issues)
    if (issue.kind == data::ParseIssue::Kind::BadImage) bad.push_back(issue.message);
  return bad;
}

}  // namespace

void add_stats(CLI::App& app) {
  auto* cmd = app.add_subcommand("stats", "Dataset statistics and problems (per class and split)");
  auto flags = std::make_shared<ConfigFlags>();
  flags->add(cmd, false);
  auto root = std::make_shared<std::string>();
  auto split = std::make_shared<std::string>();
  auto classes = std::make_shared<std::string>();
  auto max_issues = std::make_shared<int>(50);
  auto check_images = std::make_shared<bool>(false);
  cmd->add_flag("--check-images", *check_images,
                "Decode every image and list the empty, truncated or undecodable ones (exit status 1 if any)");
  cmd->add_option("--data", *root, "A VOC root (instead of the config's data.train / data.test)");
  cmd->add_option("--split", *split, "With --data: the image set (e.g. trainval, test)");
  cmd->add_option("--classes", *classes, "With --data: comma-separated class names");
  cmd->add_option("--max-issues", *max_issues, "Problems listed per split")->capture_default_str();
  cmd->callback([=] {
    const Config config = flags->load();
    std::vector<std::pair<std::string, std::vector<DatasetSplit>>> sets;
    // Statistics show everything (difficult objects kept); the training rule is reported apart.
    data::ParseOptions po = parse_options(config, false);
    if (!root->empty()) {
      if (split->empty()) throw Error("stats: --data needs --split");
      po = parse_options(config, false, classes_for_root({*root, *split}, *classes, config));
      sets.push_back({*split, {{*root, *split}}});
    } else {
      sets.push_back({"train (data.train)", config.data.train});
      sets.push_back({"test (data.test)", config.data.test});
    }
    po.skip_bad_images = po.skip_bad_images || *check_images;  // listed below instead of stopping the load
    std::size_t bad_total = 0;
    for (const auto& [name, splits] : sets) {
      const data::Dataset ds = data::load_dataset(splits, po);
      std::cout << name << ":\n" << data::format_stats(ds, data::dataset_stats(ds), *max_issues) << "\n";
      if (!*check_images) continue;
      const std::vector<std::string> bad = bad_images(ds);
      std::cout << "  images checked (decoded): " << ds.images.size() + bad.size() << ", bad: " << bad.size() << "\n";
      for (const auto& b : bad) std::cout << "    " << b << "\n";
      bad_total += bad.size();
    }
    if (bad_total > 0) set_exit_status(1);
    if (root->empty())
      std::cout << "difficult objects are " << (config.data.train_difficult ? "used" : "not used")
                << " for training (data.train_difficult) and always kept for evaluation\n";
  });
}

}  // namespace yolo2::cli
