#include "yolo2/eval/detect_files.hpp"

#include <unistd.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <filesystem>

#include "yolo2/error.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::eval {

namespace fs = std::filesystem;

namespace {

std::string lower_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

}  // namespace

std::vector<std::string> list_detect_images(const std::string& input) {
  if (!fs::exists(input)) throw Error(input + ": no such image or folder");
  if (!fs::is_directory(input)) return {input};
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(input)) {
    const std::string ext = lower_extension(e.path());
    if (ext != ".jpg" && ext != ".jpeg" && ext != ".png" && ext != ".bmp") continue;
    // An image's name on a symlink that loops or leads nowhere is listed all the same: detect then
    // reports it with the reason it cannot be read and goes on with the others (exit status 1).
    std::error_code ec, link_ec;
    const fs::file_status target = e.status(ec);  // through the link
    if (fs::is_regular_file(target) || (e.is_symlink(link_ec) && (ec || !fs::exists(target))))
      files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw Error(input + ": the folder holds no .jpg/.jpeg/.png/.bmp image");
  return files;
}

void check_detect_outputs(const std::string& json, const std::string& output, const std::string& input,
                          const std::vector<std::string>& files) {
  if (!json.empty()) {
    const fs::path dir = fs::path(json).has_parent_path() ? fs::path(json).parent_path() : fs::path(".");
    if (fs::is_directory(json)) throw Error(json + ": --json names a folder, not a file");
    if (!fs::is_directory(dir) || ::access(dir.c_str(), W_OK) != 0)
      throw Error(json + ": cannot write the JSON there (" + dir.string() + " is missing or not writable)");
  }
  if (output.empty()) return;
  if (fs::exists(output) && fs::is_directory(input) && fs::equivalent(output, input))
    throw Error(output + ": --output is the input folder; the drawn images would replace the originals");
  // A drawn copy never replaces an input image (--output the input's own folder, a single file too).
  for (const auto& file : files) {
    std::error_code ec;
    const fs::path drawn = fs::path(output) / fs::path(file).filename();
    if (fs::exists(drawn, ec) && fs::equivalent(drawn, file, ec))
      throw Error(drawn.string() + ": the drawn copy of " + file +
                  " would replace that image itself (--output is its folder): pick another --output; nothing was "
                  "written");
  }
}

void write_drawn_image(const std::string& output, const std::string& file, const cv::Mat& drawn) {
  const std::string ext = lower_extension(fs::path(file));
  std::vector<uchar> buf;
  if (!cv::imencode(ext == ".jpeg" ? ".jpg" : ext, drawn, buf)) throw Error(file + ": cannot encode the drawn image");
  util::write_file_atomic((fs::path(output) / fs::path(file).filename()).string(), std::string(buf.begin(), buf.end()));
}

std::string detections_json(const std::vector<ImageDetections>& images, const std::vector<std::string>& class_names) {
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  for (const ImageDetections& im : images) {
    if (!im.error.empty()) {
      all.push_back({{"image", im.file}, {"error", im.error}});
      continue;
    }
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& d : im.detections)
      list.push_back({{"class", class_names[static_cast<std::size_t>(d.label)]},
                      {"label", d.label},
                      {"score", d.score},
                      {"box", {d.box.x1, d.box.y1, d.box.x2, d.box.y2}}});
    all.push_back({{"image", im.file}, {"width", im.width}, {"height", im.height}, {"detections", list}});
  }
  return all.dump(2) + "\n";
}

}  // namespace yolo2::eval
