// `yolo2 eval`: Pascal VOC mAP of a checkpoint (or darknet weights), or of existing results files.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>

#include "../config_words.hpp"
#include "verbs.hpp"
#include "yolo2/data/dataset.hpp"
#include "yolo2/error.hpp"
#include "yolo2/eval/coco_json.hpp"
#include "yolo2/eval/evaluator.hpp"
#include "yolo2/eval/report.hpp"
#include "yolo2/eval/results_io.hpp"
#include "yolo2/io/darknet.hpp"
#include "yolo2/io/inference.hpp"
#include "yolo2/options.hpp"
#include "yolo2/runtime/precision.hpp"
#include "yolo2/runtime/setup.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::cli {

namespace {

struct EvalFlags {
  ConfigFlags config;
  std::string checkpoint, weights, detections, data, split, classes, metric, output, json;
  bool strict_iou = false;
};

// A results JSON in COCO's form, or a folder of VOC comp4 files.
std::vector<eval::Detection> read_detections(const EvalFlags& f, const data::Dataset& ds,
                                             std::vector<eval::CocoDetection>& coco_form) {
  if (std::filesystem::is_regular_file(f.detections)) {
    coco_form = eval::read_coco_results(f.detections, ds);
    return eval::voc_detections(coco_form);
  }
  std::vector<std::string> ids;
  for (const auto& im : ds.images) ids.push_back(im.id);
  const auto dets = eval::read_voc_results(f.detections, f.split, ds.class_names, ids);
  coco_form = eval::coco_detections(dets);
  return dets;
}

void score_results_files(const EvalFlags& f) {
  if (f.data.empty() || f.split.empty()) throw Error("eval --detections needs --data ROOT and --split NAME");
  Config config = f.config.load();
  if (!f.metric.empty()) config.eval.metric = f.metric;
  if (f.strict_iou) config.eval.strict_iou = true;
  const data::ParseOptions po = parse_options(config, false, classes_for_root({f.data, f.split}, f.classes, config));
  const data::Dataset ds = data::load_dataset({{f.data, f.split}}, po);
  std::vector<eval::CocoDetection> coco_form;  // the file's own doubles, for COCO's figures
  const auto dets = read_detections(f, ds, coco_form);
  if (config.eval.metric == "coco") {
    const eval::CocoResult r =
        eval::evaluate_coco(eval::coco_ground_truth(ds), coco_form, static_cast<int>(ds.images.size()),
                            static_cast<int>(ds.class_names.size()), eval::coco_image_order(ds));
    std::cout << eval::format_coco_table(r, ds.class_names);
    if (!f.json.empty()) eval::write_coco_json(f.json, r, ds.class_names);
    return;
  }
  const eval::MapResult r = eval::evaluate_voc(eval::ground_truth(ds), dets, po.class_names, voc_options(config.eval));
  std::cout << eval::format_map_table(r);
  if (!f.json.empty()) eval::write_map_json(f.json, r);
  if (!f.output.empty()) eval::save_pr_plots(r, (std::filesystem::path(f.output) / "pr").string());
}

void evaluate_network(const EvalFlags& f) {
  io::InferenceSource src;
  src.checkpoint = f.checkpoint;
  src.darknet_weights = f.weights;
  if (!f.config.path.empty())
    src.config = f.config.load();
  else if (!f.weights.empty())
    throw Error("eval --weights needs --config FILE (the network and data)");
  else
    src.overrides = f.config.overrides;
  src.to_device = false;  // after the command line's metric settings
  io::InferenceModel im = io::load_for_inference(src);
  Config& config = im.config;
  if (!f.metric.empty()) config.eval.metric = f.metric;
  if (f.strict_iou) config.eval.strict_iou = true;
  std::vector<DatasetSplit> splits = config.data.test;
  if (!f.data.empty())
    splits = {{f.data, f.split.empty() ? std::string("test") : f.split}};
  else if (!f.split.empty())
    for (auto& s : splits) s.split = f.split;
  runtime::setup_runtime(config.runtime);
  const c10::Device device = runtime::resolve_device(config.runtime.device);
  // fp32 with TF32 off in cuBLAS and cuDNN (LibTorch leaves it on in cuDNN), cudnn.benchmark on a GPU:
  // the figures do not depend on the checkpoint's training precision.
  runtime::setup_precision(runtime::Precision::Fp32, device);
  model::YoloV2& net = im.model;
  net->to(device);
  if (!f.json.empty()) util::check_writable(f.json);  // before the evaluation, not after it
  if (!f.output.empty()) util::check_writable((std::filesystem::path(f.output) / "map.json").string());
  const data::Dataset ds = data::load_dataset(splits, parse_options(config, false));
  if (const std::string skipped = data::skipped_images_summary(ds); !skipped.empty())
    spdlog::warn("eval: {} (left out of the evaluation: neither their objects nor detections count)", skipped);
  spdlog::info("eval: {} images at {} px ({}), metric {}, device {}", ds.images.size(), config.data.input_size,
               config_word(config.data.eval_transform), config.eval.metric, device.str());
  const model::FusedYoloV2 fused(*net);
  int64_t last_pct = -1;
  const eval::EvalRun run =
      eval::evaluate_model(fused, ds, eval_options(config), device, [&](int64_t done, int64_t total) {
        const int64_t pct = 100 * done / total;
        if (pct / 10 != last_pct / 10 || done == total) spdlog::info("eval: {}/{} images", done, total);
        last_pct = pct;
      });
  std::cout << eval::format_run_table(run, ds.class_names);
  spdlog::info("eval: {} images in {:.1f} s ({:.1f} images/s), {} detections", ds.images.size(), run.seconds,
               run.images_per_second, run.detections.size());
  const std::string split_name = splits.front().split;
  if (!f.output.empty()) {
    const auto files = eval::write_eval_report(f.output, split_name, ds, run);
    spdlog::info("eval: wrote {} files to {} (results/comp4_det_{}_<class>.txt, map.json, pr/*.png)", files.size(),
                 f.output, split_name);
  }
  if (!f.json.empty() && run.coco)
    eval::write_coco_json(f.json, *run.coco, ds.class_names);
  else if (!f.json.empty())
    eval::write_map_json(f.json, run.metrics);
}

}  // namespace

void add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval", "Pascal VOC mAP (or COCO's AP) of a checkpoint, of darknet weights, or of results files");
  auto f = std::make_shared<EvalFlags>();
  f->config.add(cmd, false);
  auto* ck = cmd->add_option("--checkpoint", f->checkpoint, "yolo2 checkpoint")->check(CLI::ExistingFile);
  auto* w =
      cmd->add_option("--weights", f->weights, "darknet .weights for the --config network")->check(CLI::ExistingFile);
  auto* det =
      cmd->add_option("--detections", f->detections,
                      "Score existing results: comp4_det_<split>_<class>.txt files in DIR, or COCO's results JSON")
          ->check(CLI::ExistingPath);
  ck->excludes(w)->excludes(det);
  w->excludes(det);
  cmd->add_option("--data", f->data, "A VOC root to evaluate on (default: the config's data.test)");
  cmd->add_option("--split", f->split, "Image set name (e.g. test, val)");
  cmd->add_option("--classes", f->classes,
                  "With --detections: comma-separated class names (default: ROOT/classes.txt or the config's)");
  cmd->add_option("--metric", f->metric, "voc07 (11-point), voc12 (area) or coco (AP at IoU .50:.95, AP50, ..., AR)")
      ->check(CLI::IsMember({"voc07", "voc12", "coco"}));
  cmd->add_flag("--strict-iou", f->strict_iou,
                "IoU must exceed eval.iou (py-faster-rcnn) instead of reaching it (devkit)");
  cmd->add_option("-o,--output", f->output, "Write comp4 results files, map.json and PR-curve PNGs here");
  cmd->add_option("--json", f->json, "Write the metrics as JSON to this file");
  cmd->callback([f] {
    if (!f->detections.empty()) return score_results_files(*f);
    if (f->checkpoint.empty() && f->weights.empty())
      throw Error("eval: give --checkpoint CKPT, --weights FILE (with --config) or --detections DIR");
    evaluate_network(*f);
  });
}

}  // namespace yolo2::cli
