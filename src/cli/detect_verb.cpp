// `yolo2 detect`: run a checkpoint on images, draw the boxes, write JSON.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>

#include "verbs.hpp"
#include "yolo2/data/image_io.hpp"
#include "yolo2/error.hpp"
#include "yolo2/eval/detect_files.hpp"
#include "yolo2/eval/detector.hpp"
#include "yolo2/eval/evaluator.hpp"
#include "yolo2/io/inference.hpp"
#include "yolo2/options.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::cli {

namespace fs = std::filesystem;

namespace {

struct DetectFlags {
  std::string checkpoint, input, output, json;
  double conf = -1, nms = -1;
  std::vector<std::string> overrides;
};

void print_line(const std::string& file, const std::vector<eval::Detection>& dets,
                const std::vector<std::string>& names) {
  std::cout << file << ": " << dets.size() << " object(s)";
  for (std::size_t k = 0; k < std::min<std::size_t>(dets.size(), 5); ++k)
    std::cout << (k ? ", " : " — ") << names[static_cast<std::size_t>(dets[k].label)] << " " << std::fixed
              << std::setprecision(2) << dets[k].score;
  std::cout << (dets.size() > 5 ? ", ..." : "") << "\n";
}

// Every image is tried: one that cannot be read is reported (and listed in the JSON with its error)
// and the run goes on; the exit status is then 1.
void run_detect(const DetectFlags& f) {
  const std::vector<std::string> files = eval::list_detect_images(f.input);
  eval::check_detect_outputs(f.json, f.output, f.input, files);
  io::InferenceSource src;
  src.checkpoint = f.checkpoint;
  src.overrides = f.overrides;
  io::InferenceModel im = io::load_for_inference(src);
  const std::vector<std::string>& names = im.config.data.classes;
  eval::DetectOptions dopt = detect_options(im.config.eval, false);
  if (f.conf >= 0) dopt.score_threshold = static_cast<float>(f.conf);
  if (f.nms >= 0) dopt.nms_threshold = static_cast<float>(f.nms);
  const eval::Detector detector(*im.model, detector_options(im.config), im.device);
  if (!f.output.empty()) fs::create_directories(f.output);
  std::vector<eval::ImageDetections> results;
  std::map<std::string, int> per_class;
  std::size_t total = 0, failed = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& file : files) {
    eval::ImageDetections& r = results.emplace_back();
    r.file = file;
    cv::Mat image;
    try {
      image = data::read_image_file(file);
    } catch (const Error& e) {
      spdlog::error("{}", e.what());
      r.error = e.what();
      ++failed;
      continue;
    }
    r.width = image.cols, r.height = image.rows;
    r.detections = detector.detect(image, dopt);
    total += r.detections.size();
    for (const auto& d : r.detections) ++per_class[names[static_cast<std::size_t>(d.label)]];
    if (!f.output.empty()) eval::write_drawn_image(f.output, file, eval::draw_detections(image, r.detections, names));
    print_line(file, r.detections, names);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "detect: " << files.size() << " image(s), " << total
            << " detection(s) at score >= " << dopt.score_threshold << " in " << std::setprecision(2) << s << " s";
  for (const auto& [name, n] : per_class)
    std::cout << (name == per_class.begin()->first ? "; " : ", ") << name << " " << n;
  std::cout << "\n";
  if (!f.json.empty()) util::write_file_atomic(f.json, eval::detections_json(results, names));
  if (!f.output.empty()) std::cout << "drawn images in " << f.output << "\n";
  if (failed > 0) {
    spdlog::error("detect: {} of {} image(s) could not be read (listed above and in the JSON)", failed, files.size());
    set_exit_status(1);
  }
}

}  // namespace

void add_detect(CLI::App& app) {
  auto* cmd = app.add_subcommand("detect", "Detect objects in an image or a folder; draw boxes and write JSON");
  auto f = std::make_shared<DetectFlags>();
  cmd->add_option("--checkpoint", f->checkpoint, "yolo2 checkpoint")->required()->check(CLI::ExistingFile);
  cmd->add_option("-i,--input", f->input, "An image or a folder of images")->required();
  cmd->add_option("-o,--output", f->output, "Folder for the drawn images (default: none written)");
  cmd->add_option("--conf", f->conf, "Score threshold (default eval.detect_thresh, 0.25)")->check(number_in(0, 1));
  cmd->add_option("--nms", f->nms, "Per-class NMS IoU threshold (default eval.nms, 0.45)")->check(number_in(0, 1));
  cmd->add_option("--json", f->json, "Write the detections as JSON to this file");
  cmd->add_option("--set", f->overrides, "Override a key of the checkpoint's config (e.g. data.input_size=608)");
  cmd->callback([f] { run_detect(*f); });
}

}  // namespace yolo2::cli
