#include "synth_forms.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "yolo2/error.hpp"

namespace yolo2::data::synth_forms {
namespace fs = std::filesystem;

void make_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw Error("synth: cannot create folder '" + dir.string() + "'" + (ec ? ": " + ec.message() : std::string()));
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw Error("synth: cannot write '" + path.string() + "'");
}

namespace {

std::string relative_image(const ImageRecord& rec, const fs::path& root) {
  return fs::path(rec.image_path).lexically_relative(root).generic_string();
}

}  // namespace

void write_darknet_labels(const ImageRecord& rec, const fs::path& path) {
  std::string text;
  char line[160];
  const double W = rec.width, H = rec.height;
  for (const Object& o : rec.objects) {
    // 17 significant digits: the double itself, so the reader's float conversion is exact.
    std::snprintf(line, sizeof line, "%d %.17g %.17g %.17g %.17g\n", o.label, (double(o.x1) + o.x2) / (2 * W),
                  (double(o.y1) + o.y2) / (2 * H), (double(o.x2) - o.x1) / W, (double(o.y2) - o.y1) / H);
    text += line;
  }
  write_text(path, text);
}

std::vector<std::string> write_darknet_files(const fs::path& root, const std::vector<std::string>& names,
                                             const std::vector<ImageRecord>& images, const Splits& splits) {
  std::vector<std::string> files;
  for (std::size_t s = 0; s < splits.names.size(); ++s) {
    std::string list;
    for (int i : splits.indices[s]) list += relative_image(images[static_cast<std::size_t>(i)], root) + "\n";
    write_text(root / (splits.names[s] + ".txt"), list);
    files.push_back(splits.names[s] + ".txt");
  }
  std::string names_text, yaml_names;
  for (const auto& n : names) names_text += n + "\n", yaml_names += (yaml_names.empty() ? "" : ", ") + n;
  write_text(root / "obj.names", names_text);
  // The validation list: test, or val when there is no test split.
  const std::size_t test =
      static_cast<std::size_t>(std::find(splits.names.begin(), splits.names.end(), "test") - splits.names.begin());
  const std::string valid = test < splits.names.size() && !splits.indices[test].empty() ? "test.txt" : "val.txt";
  write_text(root / "obj.data",
             "# written by yolo2 synth (darknet's detector train / valid)\nclasses = " + std::to_string(names.size()) +
                 "\ntrain = trainval.txt\nvalid = " + valid + "\nnames = obj.names\nbackup = backup/\n");
  write_text(root / "data.yaml",
             "# written by yolo2 synth (ultralytics' dataset file)\npath: .\ntrain: trainval.txt\nval: " + valid +
                 "\nnc: " + std::to_string(names.size()) + "\nnames: [" + yaml_names + "]\n");
  for (const char* f : {"obj.names", "obj.data", "data.yaml"}) files.emplace_back(f);
  return files;
}

std::vector<std::string> write_coco_files(const fs::path& root, const std::vector<std::string>& names,
                                          const std::vector<ImageRecord>& images, const Splits& splits) {
  using nlohmann::json;
  json categories = json::array();
  for (std::size_t c = 0; c < names.size(); ++c) categories.push_back({{"id", c + 1}, {"name", names[c]}});
  std::vector<std::string> files;
  make_dir(root / "annotations");
  for (std::size_t s = 0; s < splits.names.size(); ++s) {
    json imgs = json::array(), anns = json::array();
    for (int i : splits.indices[s]) {
      const ImageRecord& rec = images[static_cast<std::size_t>(i)];
      imgs.push_back({{"id", i + 1},
                      {"file_name", fs::path(rec.image_path).filename().string()},
                      {"width", rec.width},
                      {"height", rec.height}});
      for (const Object& o : rec.objects) {
        const double w = double(o.x2) - o.x1, h = double(o.y2) - o.y1;
        anns.push_back({{"id", anns.size() + 1},
                        {"image_id", i + 1},
                        {"category_id", o.label + 1},
                        {"bbox", {o.x1, o.y1, w, h}},
                        {"area", w * h},
                        {"iscrowd", o.difficult ? 1 : 0}});
      }
    }
    const json doc{{"info", {{"description", "written by yolo2 synth"}}},
                   {"images", imgs},
                   {"annotations", anns},
                   {"categories", categories}};
    const std::string file = "annotations/instances_" + splits.names[s] + ".json";
    write_text(root / file, doc.dump() + "\n");
    files.push_back(file);
  }
  return files;
}

}  // namespace yolo2::data::synth_forms
