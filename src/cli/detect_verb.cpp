// `yolo2 detect`: run a checkpoint on images, draw the boxes, write JSON.
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>

#include <unistd.h>

#include "verbs.hpp"
#include "yolo2/data/image_io.hpp"
#include "yolo2/error.hpp"
#include "yolo2/eval/detector.hpp"
#include "yolo2/eval/evaluator.hpp"
#include "yolo2/io/inference.hpp"
#include "yolo2/options.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::cli {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> list_images(const std::string& input) {
  if (!fs::exists(input)) throw Error(input + ": no such image or folder");
  if (!fs::is_directory(input)) return {input};
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(input)) {
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (e.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp"))
      files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw Error(input + ": the folder holds no .jpg/.jpeg/.png/.bmp image");
  return files;
}

struct DetectFlags {
  std::string checkpoint, input, output, json;
  double conf = -1, nms = -1;
  std::vector<std::string> overrides;
};

// Fails before any work when a result could not be written at the end.
void check_writable(const std::string& json, const std::string& output, const std::string& input) {
  if (!json.empty()) {
    const fs::path dir = fs::path(json).has_parent_path() ? fs::path(json).parent_path() : fs::path(".");
    if (fs::is_directory(json)) throw Error(json + ": --json names a folder, not a file");
    if (!fs::is_directory(dir) || ::access(dir.c_str(), W_OK) != 0)
      throw Error(json + ": cannot write the JSON there (" + dir.string() + " is missing or not writable)");
  }
  if (!output.empty() && fs::exists(output) && fs::is_directory(input) && fs::equivalent(output, input))
    throw Error(output + ": --output is the input folder; the drawn images would replace the originals");
}

// The drawn copy keeps the input's file name (a.jpg, a.png and a.JPEG stay apart) and its format.
void write_drawn(const std::string& output, const std::string& file, const cv::Mat& drawn) {
  std::string ext = fs::path(file).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::vector<uchar> buf;
  if (!cv::imencode(ext == ".jpeg" ? ".jpg" : ext, drawn, buf)) throw Error(file + ": cannot encode the drawn image");
  util::write_file_atomic((fs::path(output) / fs::path(file).filename()).string(), std::string(buf.begin(), buf.end()));
}

nlohmann::ordered_json detections_json(const std::vector<eval::Detection>& dets, const std::vector<std::string>& names,
                                       std::map<std::string, int>& per_class) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& d : dets) {
    const std::string& name = names[static_cast<std::size_t>(d.label)];
    ++per_class[name];
    list.push_back(
        {{"class", name}, {"label", d.label}, {"score", d.score}, {"box", {d.box.x1, d.box.y1, d.box.x2, d.box.y2}}});
  }
  return list;
}

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
  check_writable(f.json, f.output, f.input);
  io::InferenceSource src;
  src.checkpoint = f.checkpoint;
  src.overrides = f.overrides;
  io::InferenceModel im = io::load_for_inference(src);
  const std::vector<std::string>& names = im.config.data.classes;
  eval::DetectOptions dopt = detect_options(im.config.eval, false);
  if (f.conf >= 0) dopt.score_threshold = static_cast<float>(f.conf);
  if (f.nms >= 0) dopt.nms_threshold = static_cast<float>(f.nms);
  const eval::Detector detector(*im.model, detector_options(im.config), im.device);
  const auto files = list_images(f.input);
  // A drawn copy never replaces an input image (--output the input's own folder, a single file too).
  for (const auto& file : files) {
    std::error_code ec;
    const fs::path drawn = fs::path(f.output) / fs::path(file).filename();
    if (!f.output.empty() && fs::exists(drawn, ec) && fs::equivalent(drawn, file, ec))
      throw Error(drawn.string() + ": the drawn copy of " + file +
                  " would replace that image itself (--output is its folder): pick another --output; nothing was "
                  "written");
  }
  if (!f.output.empty()) fs::create_directories(f.output);
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  std::map<std::string, int> per_class;
  std::size_t total = 0, failed = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& file : files) {
    cv::Mat image;
    try {
      image = data::read_image_file(file);
    } catch (const Error& e) {
      spdlog::error("{}", e.what());
      all.push_back({{"image", file}, {"error", e.what()}});
      ++failed;
      continue;
    }
    const auto dets = detector.detect(image, dopt);
    total += dets.size();
    all.push_back({{"image", file},
                   {"width", image.cols},
                   {"height", image.rows},
                   {"detections", detections_json(dets, names, per_class)}});
    if (!f.output.empty()) write_drawn(f.output, file, eval::draw_detections(image, dets, names));
    print_line(file, dets, names);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "detect: " << files.size() << " image(s), " << total
            << " detection(s) at score >= " << dopt.score_threshold << " in " << std::setprecision(2) << s << " s";
  for (const auto& [name, n] : per_class)
    std::cout << (name == per_class.begin()->first ? "; " : ", ") << name << " " << n;
  std::cout << "\n";
  if (!f.json.empty()) util::write_file_atomic(f.json, all.dump(2) + "\n");
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
