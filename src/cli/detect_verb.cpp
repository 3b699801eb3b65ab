// `yolo2 detect`: run a checkpoint on images, draw the boxes, write JSON.
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>

#include "verbs.hpp"
#include "yolo2/error.hpp"
#include "yolo2/eval/detector.hpp"
#include "yolo2/eval/evaluator.hpp"
#include "yolo2/options.hpp"
#include "yolo2/train/inference.hpp"
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
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (e.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp"))
      files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw Error(input + ": the folder holds no .jpg/.jpeg/.png/.bmp image");
  return files;
}

}  // namespace

void add_detect(CLI::App& app) {
  auto* cmd = app.add_subcommand("detect", "Detect objects in an image or a folder; draw boxes and write JSON");
  auto ckpt = std::make_shared<std::string>();
  auto input = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto json = std::make_shared<std::string>();
  auto conf = std::make_shared<double>(-1);
  auto nms = std::make_shared<double>(-1);
  auto overrides = std::make_shared<std::vector<std::string>>();
  cmd->add_option("--checkpoint", *ckpt, "yolo2 checkpoint")->required()->check(CLI::ExistingFile);
  cmd->add_option("-i,--input", *input, "An image or a folder of images")->required();
  cmd->add_option("-o,--output", *output, "Folder for the drawn images (default: none written)");
  cmd->add_option("--conf", *conf, "Score threshold (default eval.detect_thresh, 0.25)");
  cmd->add_option("--nms", *nms, "Per-class NMS IoU threshold (default eval.nms, 0.45)");
  cmd->add_option("--json", *json, "Write the detections as JSON to this file");
  cmd->add_option("--set", *overrides, "Override a key of the checkpoint's config (e.g. data.input_size=608)");
  cmd->callback([=] {
    train::InferenceSource src;
    src.checkpoint = *ckpt;
    src.overrides = *overrides;
    train::InferenceModel im = train::load_for_inference(src);
    const Config& config = im.config;
    eval::DetectOptions dopt = detect_options(config.eval, false);
    if (*conf >= 0) dopt.score_threshold = static_cast<float>(*conf);
    if (*nms >= 0) dopt.nms_threshold = static_cast<float>(*nms);
    const eval::Detector detector(*im.model, detector_options(config), im.device);
    const auto files = list_images(*input);
    if (!output->empty()) fs::create_directories(*output);
    nlohmann::ordered_json all = nlohmann::ordered_json::array();
    std::map<std::string, int> per_class;
    std::size_t total = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& file : files) {
      const cv::Mat image = cv::imread(file, cv::IMREAD_COLOR);
      if (image.empty()) throw Error(file + ": cannot read image");
      const auto dets = detector.detect(image, dopt);
      total += dets.size();
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      for (const auto& d : dets) {
        const std::string& name = config.data.classes[static_cast<std::size_t>(d.label)];
        ++per_class[name];
        list.push_back({{"class", name}, {"label", d.label}, {"score", d.score},
                        {"box", {d.box.x1, d.box.y1, d.box.x2, d.box.y2}}});
      }
      all.push_back({{"image", file}, {"width", image.cols}, {"height", image.rows}, {"detections", list}});
      if (!output->empty()) {
        const std::string out = (fs::path(*output) / (fs::path(file).stem().string() + ".jpg")).string();
        std::vector<uchar> buf;
        cv::imencode(".jpg", eval::draw_detections(image, dets, config.data.classes), buf);
        util::write_file_atomic(out, std::string(buf.begin(), buf.end()));
      }
      std::cout << file << ": " << dets.size() << " object(s)";
      for (std::size_t k = 0; k < std::min<std::size_t>(dets.size(), 5); ++k)
        std::cout << (k ? ", " : " — ") << config.data.classes[static_cast<std::size_t>(dets[k].label)] << " "
                  << std::fixed << std::setprecision(2) << dets[k].score;
      std::cout << (dets.size() > 5 ? ", ..." : "") << "\n";
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "detect: " << files.size() << " image(s), " << total << " detection(s) at score >= "
              << dopt.score_threshold << " in " << std::setprecision(2) << s << " s";
    for (const auto& [name, n] : per_class) std::cout << (name == per_class.begin()->first ? "; " : ", ") << name << " " << n;
    std::cout << "\n";
    if (!json->empty()) util::write_file_atomic(*json, all.dump(2) + "\n");
    if (!output->empty()) std::cout << "drawn images in " << *output << "\n";
  });
}

}  // namespace yolo2::cli
