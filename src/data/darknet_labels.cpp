// darknet / YOLO label files (yolov2-reference.md §5; darknet's voc_label.py, AlexeyAB's and
// ultralytics' layouts): one `<image>.txt` per image with lines `class cx cy w h`, normalised to the
// image; the images named by a list file (darknet's obj.data `train=` / `valid=`, a .txt list) or a
// folder (ultralytics' data.yaml `train:` / `val:`, or ROOT/images/SPLIT). Each label file is found by
// darknet's path rule: the last `images` or `JPEGImages` folder of the image's path becomes `labels`
// and the extension `.txt`.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "formats.hpp"
#include "yolo2/data/image_io.hpp"
#include "yolo2/error.hpp"

namespace yolo2::data::formats {
namespace fs = std::filesystem;

namespace {

bool has_extension(const fs::path& p, std::initializer_list<const char*> exts) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::any_of(exts.begin(), exts.end(), [&](const char* x) { return e == x; });
}

bool is_image(const fs::path& p) { return has_extension(p, {".jpg", ".jpeg", ".png", ".bmp"}); }

// What an entry describes once its files are read: the images, in order, and the class names.
struct Described {
  std::vector<std::string> images;
  std::vector<std::string> names;
  std::string names_file;  // where the names come from ("" when none)
  std::string source;      // what listed the images, for messages and `sources`
};

// darknet's read_data_cfg: `key = value` lines, '#' comments.
std::map<std::string, std::pair<std::string, int>> read_obj_data(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the darknet .data file");
  std::map<std::string, std::pair<std::string, int>> keys;
  for (const auto& [line_no, line] : list_lines(in)) {
    if (line[0] == '#' || line[0] == ';') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos)
      throw Error(path + ":" + std::to_string(line_no) + ": expected `key = value` (darknet .data), got '" +
                  line.substr(0, 60) + "'");
    keys[trimmed(line.substr(0, eq))] = {trimmed(line.substr(eq + 1)), line_no};
  }
  return keys;
}

// A path written in `from` (a list file, obj.data, data.yaml): relative to that file's folder, or
// else to the working directory (darknet runs from its own folder with such paths); as written when
// neither exists (the caller names it).
fs::path resolve(const std::string& written, const fs::path& from) {
  const fs::path p(written);
  if (p.is_absolute()) return p;
  const fs::path beside = from.parent_path() / p;
  std::error_code ec;
  if (fs::exists(beside, ec) || !fs::exists(p, ec)) return beside;
  return p;
}

// The images of a list file (one path per line).
std::vector<std::string> list_file_images(const fs::path& list) {
  std::ifstream in(list);
  if (!in) throw Error(list.string() + ": cannot open the image list");
  std::vector<std::string> images;
  for (const auto& [line_no, line] : list_lines(in)) {
    const fs::path p = resolve(line, list);
    std::error_code ec;
    if (!fs::is_regular_file(p, ec))
      throw Error(list.string() + ":" + std::to_string(line_no) + ": image '" + line + "' does not exist (tried " +
                  p.string() + (fs::path(line).is_absolute() ? "" : ", relative to the list's folder and to the cwd") +
                  ")");
    images.push_back(p.string());
  }
  if (images.empty()) throw Error(list.string() + ": the list names no image");
  return images;
}

// The images under a folder, recursively, sorted (ultralytics' `train: images/train`).
std::vector<std::string> folder_images(const fs::path& dir) {
  std::vector<std::string> images;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec) && is_image(it->path())) images.push_back(it->path().string());
  if (ec) throw Error(dir.string() + ": cannot list the image folder (" + ec.message() + ")");
  std::sort(images.begin(), images.end());
  if (images.empty()) throw Error(dir.string() + ": no .jpg, .jpeg, .png or .bmp image in the folder");
  return images;
}

std::vector<std::string> images_of(const fs::path& p, const std::string& context) {
  std::error_code ec;
  if (fs::is_directory(p, ec)) return folder_images(p);
  if (fs::is_regular_file(p, ec)) return list_file_images(p);
  throw Error(context + ": '" + p.string() + "' is neither an image folder nor a list file");
}

Described from_obj_data(const fs::path& file, const std::string& split) {
  const auto keys = read_obj_data(file.string());
  const std::string key = split.empty() ? "train" : split;
  const auto it = keys.find(key);
  if (it == keys.end()) {
    std::string have;
    for (const auto& [k, v] : keys) have += (have.empty() ? "" : ", ") + k;
    throw Error(file.string() + ": no `" + key + " =` line for split '" + key + "' (it has: " + have + ")");
  }
  Described d;
  d.source = file.string() + " (" + key + ")";
  d.images = list_file_images(resolve(it->second.first, file));
  if (const auto n = keys.find("names"); n != keys.end()) {
    d.names_file = resolve(n->second.first, file).string();
    d.names = read_class_names(d.names_file);
    if (const auto c = keys.find("classes"); c != keys.end() && c->second.first != std::to_string(d.names.size()))
      throw Error(file.string() + ":" + std::to_string(c->second.second) + ": classes = " + c->second.first + ", but " +
                  d.names_file + " lists " + std::to_string(d.names.size()) + " names");
  }
  return d;
}

// ultralytics' data.yaml: `path` (the dataset root, relative to this file), `train` / `val` / `test`
// (a folder, a list file, or a list of them, relative to `path`), `names` (a list, or a map from
// index to name), `nc` optional.
std::vector<std::string> yaml_names(const YAML::Node& names, const std::string& file) {
  std::vector<std::string> out;
  if (names.IsSequence()) {
    for (const auto& n : names) out.push_back(n.as<std::string>());
  } else if (names.IsMap()) {
    std::map<int, std::string> by_index;
    for (const auto& kv : names) by_index[kv.first.as<int>()] = kv.second.as<std::string>();
    int expect = 0;
    for (const auto& [index, name] : by_index) {
      if (index != expect++)
        throw Error(file + ": names: the indices must be 0, 1, 2, ... without gaps (index " + std::to_string(index) +
                    " found where " + std::to_string(expect - 1) + " was expected)");
      out.push_back(name);
    }
  } else {
    throw Error(file + ": names: must be a list of class names or a map {0: name, 1: name, ...}");
  }
  return out;
}

Described from_data_yaml(const fs::path& file, const std::string& split) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const YAML::Exception& e) {
    throw Error(file.string() + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  const std::string key = split.empty() ? "train" : split;
  Described d;
  d.source = file.string() + " (" + key + ")";
  try {
    const fs::path base = root["path"] ? file.parent_path() / root["path"].as<std::string>() : file.parent_path();
    if (!root[key] || root[key].IsNull())
      throw Error(file.string() + ": no `" + key + ":` entry (split '" + key + "')");
    std::vector<std::string> parts;
    if (root[key].IsSequence())
      for (const auto& n : root[key]) parts.push_back(n.as<std::string>());
    else
      parts.push_back(root[key].as<std::string>());
    for (const auto& part : parts) {
      const fs::path p = fs::path(part).is_absolute() ? fs::path(part) : base / part;
      const auto more = images_of(p, file.string() + ": " + key);
      d.images.insert(d.images.end(), more.begin(), more.end());
    }
    if (!root["names"]) throw Error(file.string() + ": no `names:` (the class names, in label order)");
    d.names = yaml_names(root["names"], file.string());
    d.names_file = file.string();
    if (root["nc"] && root["nc"].as<std::size_t>() != d.names.size())
      throw Error(file.string() + ": nc: " + root["nc"].as<std::string>() + ", but names lists " +
                  std::to_string(d.names.size()));
  } catch (const YAML::Exception& e) {
    throw Error(file.string() + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return d;
}

// A folder: ROOT/images/SPLIT (labels in ROOT/labels/SPLIT) or a list ROOT/SPLIT.txt (before an
// obj.data there); the names in ROOT/classes.txt or ROOT/obj.names when there is one.
Described from_folder(const fs::path& root, const std::string& split) {
  Described d;
  std::error_code ec;
  const fs::path images = root / "images" / split, list = root / (split + ".txt");
  if (!split.empty() && fs::is_directory(images, ec)) {
    d.images = folder_images(images);
    d.source = images.string();
  } else if (!split.empty() && fs::is_regular_file(list, ec)) {
    d.images = list_file_images(list);
    d.source = list.string();
  } else {
    throw Error(root.string() + ": for split '" + split + "' expected the folder " + images.string() + " or the list " +
                list.string());
  }
  for (const char* n : {"classes.txt", "obj.names"})
    if (fs::is_regular_file(root / n, ec)) {
      d.names_file = (root / n).string();
      d.names = read_class_names(d.names_file);
      break;
    }
  return d;
}

Described describe(const DatasetSplit& entry) {
  const fs::path root(entry.root);
  std::error_code ec;
  if (fs::is_directory(root, ec)) {
    const bool own_split = !entry.split.empty() && (fs::is_directory(root / "images" / entry.split, ec) ||
                                                    fs::is_regular_file(root / (entry.split + ".txt"), ec));
    if (!own_split && fs::is_regular_file(root / "obj.data", ec)) return from_obj_data(root / "obj.data", entry.split);
    return from_folder(root, entry.split);
  }
  if (!fs::exists(root, ec)) throw Error(entry.root + ": the dataset (darknet labels) does not exist");
  if (has_extension(root, {".data"})) return from_obj_data(root, entry.split);
  if (has_extension(root, {".yaml", ".yml"})) return from_data_yaml(root, entry.split);
  Described d;
  d.images = list_file_images(root);
  d.source = entry.root;
  return d;
}

// darknet's label path (utils.c replace_image_to_label, as AlexeyAB and ultralytics apply it).
fs::path label_path(const fs::path& image) {
  std::vector<fs::path> parts(image.begin(), image.end());
  for (auto it = parts.rbegin(); it != parts.rend(); ++it)
    if (*it == "images" || *it == "JPEGImages") {
      *it = "labels";
      break;
    }
  fs::path out;
  for (const auto& p : parts) out /= p;
  return out.replace_extension(".txt");
}

double field(const std::string& token, const std::string& where, const char* what) {
  char* end = nullptr;
  const double v = std::strtod(token.c_str(), &end);
  if (end == token.c_str() || *end != 0 || !std::isfinite(v))
    throw Error(where + ": " + what + " is not a number: '" + token.substr(0, 40) + "'");
  return v;
}

// One label file's objects. `class cx cy w h`, each of cx, cy, w, h in [0, 1].
void read_labels(const fs::path& file, ImageRecord& rec, const ParseOptions& options, std::vector<ParseIssue>& issues) {
  std::ifstream in(file);
  if (!in) throw Error(file.string() + ": cannot open the label file");
  for (const auto& [line_no, line] : list_lines(in)) {
    const std::string where = file.string() + ":" + std::to_string(line_no);
    std::istringstream ss(line);
    std::vector<std::string> tok;
    for (std::string t; ss >> t;) tok.push_back(t);
    if (tok.size() != 5)
      throw Error(where + ": expected 5 fields `class cx cy w h`, got " + std::to_string(tok.size()) +
                  (tok.size() > 5 ? " (segment polygons are not supported)" : ""));
    const double cls = field(tok[0], where, "the class");
    if (cls != std::floor(cls) || cls < 0)
      throw Error(where + ": the class must be a whole number from 0, got '" + tok[0] + "'");
    if (cls >= static_cast<double>(options.class_names.size())) {
      const std::string msg = where + ": class " + tok[0] + " is beyond the " +
                              std::to_string(options.class_names.size()) + " class names (0 to " +
                              std::to_string(options.class_names.size() - 1) + ")";
      if (!options.skip_unknown_classes) throw Error(msg + " (data.skip_unknown_classes: true skips such objects)");
      issues.push_back({ParseIssue::Kind::UnknownClass, file.string(), msg});
      continue;
    }
    double v[4];
    const char* names[4] = {"cx", "cy", "w", "h"};
    for (int k = 0; k < 4; ++k) {
      v[k] = field(tok[static_cast<std::size_t>(k + 1)], where, names[k]);
      if (v[k] < 0 || v[k] > 1)
        throw Error(where + ": " + names[k] + " = " + tok[static_cast<std::size_t>(k + 1)] +
                    " is outside [0, 1] (label coordinates are fractions of the image's width and height)");
    }
    Object o;
    o.label = static_cast<int>(cls);
    o.name = options.class_names[static_cast<std::size_t>(o.label)];
    const double W = rec.width, H = rec.height;
    if (clip_box((v[0] - v[2] / 2) * W, (v[1] - v[3] / 2) * H, (v[0] + v[2] / 2) * W, (v[1] + v[3] / 2) * H, rec, where,
                 file.string(), o, issues))
      rec.objects.push_back(o);
  }
}

}  // namespace

std::pair<std::vector<std::string>, std::string> darknet_class_names(const DatasetSplit& entry) {
  const Described d = describe(entry);
  return {d.names, d.names_file};
}

void load_darknet_entry(const DatasetSplit& entry, const ParseOptions& options, Dataset& ds) {
  const Described d = describe(entry);
  if (!d.names.empty()) check_class_names(d.names, d.names_file, options.class_names);
  for (const auto& path : d.images) {
    ImageRecord rec;
    rec.image_path = path;
    rec.id = fs::path(path).stem().string();
    const fs::path labels = label_path(path);
    rec.annotation = labels.string();
    // The size the normalised boxes scale by: the image's own, from its header (add_image checks
    // the whole file after). Where there is no header, the cheap checks name what is wrong, if they can.
    try {
      const cv::Size size = image_size(path);
      rec.width = size.width, rec.height = size.height;
    } catch (const Error& e) {
      const std::string why = check_image_file(path).value_or(e.what());
      if (!options.skip_bad_images) throw Error(why + " (data.skip_bad_images: true skips such images)");
      ds.issues.push_back({ParseIssue::Kind::BadImage, path, why});
      continue;
    }
    std::error_code ec;
    if (!fs::exists(labels, ec)) {
      // darknet and ultralytics: an image without a label file is an image without objects.
      ds.issues.push_back({ParseIssue::Kind::MissingLabels, labels.string(),
                           labels.string() + ": no label file for " + path + " (an image without objects)"});
    } else {
      read_labels(labels, rec, options, ds.issues);
    }
    add_image(std::move(rec), options, ds);
  }
  ds.sources.push_back(d.source + ": " + std::to_string(d.images.size()) + " images");
}

}  // namespace yolo2::data::formats
