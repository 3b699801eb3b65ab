// COCO JSON (instances_*.json, as mmdetection and detectron2 read it): `images` (id, file_name,
// width, height), `annotations` (image_id, category_id, bbox [x, y, w, h] in pixels, iscrowd) and
// `categories` (id, name). Labels follow the categories sorted by id (mmdetection's cat2label), so
// COCO's 80 categories with ids 1-90 become labels 0-79. A crowd box (iscrowd: 1) is kept as an
// object that is both `crowd` and `difficult`: dropped from training unless data.train_difficult
// (mmdetection ignores crowd boxes too), ignored by VOC's evaluation like a difficult object, and
// a crowd region in COCO's.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>

#include "formats.hpp"
#include "yolo2/error.hpp"

namespace yolo2::data::formats {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct CocoFiles {
  fs::path json_file;
  fs::path images;
};

// {root: FILE.json, images: DIR} (DIR default: the JSON's folder), or {root: DIR, split: NAME}:
// DIR/annotations/instances_NAME.json with the images in DIR/NAME, DIR/images/NAME or DIR/images
// (COCO's own layout, ultralytics', and `yolo2 synth --format coco`'s), the first that exists.
CocoFiles coco_files(const DatasetSplit& entry) {
  const fs::path root(entry.root);
  std::error_code ec;
  CocoFiles f;
  if (fs::is_directory(root, ec)) {
    if (entry.split.empty())
      throw Error(entry.root + ": a COCO folder needs a split (annotations/instances_SPLIT.json)");
    f.json_file = root / "annotations" / ("instances_" + entry.split + ".json");
    if (!entry.images.empty()) {
      f.images = entry.images;
    } else {
      for (const fs::path& dir : {root / entry.split, root / "images" / entry.split, root / "images"})
        if (fs::is_directory(dir, ec)) {
          f.images = dir;
          break;
        }
      if (f.images.empty())
        throw Error(entry.root + ": no image folder for split '" + entry.split + "' (tried " +
                    (root / entry.split).string() + ", " + (root / "images" / entry.split).string() + ", " +
                    (root / "images").string() + "; or give the entry an `images:` folder)");
    }
  } else {
    f.json_file = root;
    f.images = entry.images.empty() ? root.parent_path() : fs::path(entry.images);
  }
  if (!fs::is_regular_file(f.json_file, ec))
    throw Error(f.json_file.string() + ": the COCO annotation file does not exist");
  return f;
}

json read_json(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file.string() + ": cannot open the COCO annotation file");
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    throw Error(file.string() + ": malformed JSON (byte " + std::to_string(e.byte) + ": " + e.what() + ")");
  } catch (const json::exception& e) {  // e.g. a number beyond a double's range
    throw Error(file.string() + ": unreadable JSON (" + e.what() + ")");
  }
}

// Typed access that names the JSON path on a wrong or missing value.
struct At {
  const std::string& file;
  std::string path;
  [[noreturn]] void fail(const std::string& what) const { throw Error(file + ": " + path + ": " + what); }
  const json& member(const json& object, const char* key) const {
    if (!object.is_object()) fail("must be an object");
    const auto it = object.find(key);
    if (it == object.end()) fail(std::string("has no \"") + key + "\"");
    return *it;
  }
  At operator/(const std::string& key) const { return {file, path + "." + key}; }
  At operator[](std::size_t i) const { return {file, path + "[" + std::to_string(i) + "]"}; }
};

int64_t integer(const json& v, const At& at) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() && std::abs(v.get<double>()) < 9e15)
    return static_cast<int64_t>(v.get<double>());
  at.fail("must be a whole number, got " + v.dump().substr(0, 40));
}

double number(const json& v, const At& at) {
  if (!v.is_number() || !std::isfinite(v.get<double>())) at.fail("must be a number, got " + v.dump().substr(0, 40));
  return v.get<double>();
}

const json& array_member(const json& root, const char* key, const At& at) {
  const json& a = at.member(root, key);
  if (!a.is_array()) (at / key).fail("must be an array");
  return a;
}

// Category id -> label (categories sorted by id), and the names in label order.
struct Categories {
  std::unordered_map<int64_t, int> label;  // category id -> label
  std::vector<std::string> names;          // in label order
  std::vector<int64_t> ids;                // label -> category id
};

Categories categories(const json& root, const At& top) {
  const At at = top / "categories";
  const json& cats = array_member(root, "categories", top);
  std::map<int64_t, std::string> by_id;
  for (std::size_t i = 0; i < cats.size(); ++i) {
    const At c = at[i];
    const int64_t id = integer(c.member(cats[i], "id"), c / "id");
    const json& name = c.member(cats[i], "name");
    if (!name.is_string() || name.get<std::string>().empty()) (c / "name").fail("must be a non-empty string");
    if (!by_id.emplace(id, name.get<std::string>()).second)
      (c / "id").fail("category id " + std::to_string(id) + " appears twice");
  }
  if (by_id.empty()) at.fail("lists no category");
  Categories c;
  for (const auto& [id, name] : by_id) {
    if (std::find(c.names.begin(), c.names.end(), name) != c.names.end())
      at.fail("the name '" + name + "' is given to two categories");
    c.label[id] = static_cast<int>(c.names.size());
    c.names.push_back(name);
    c.ids.push_back(id);
  }
  return c;
}

// The images, in the file's order, with their index by id.
std::vector<ImageRecord> images(const json& root, const At& top, const CocoFiles& files,
                                std::unordered_map<int64_t, std::size_t>& index) {
  const At at = top / "images";
  const json& list = array_member(root, "images", top);
  std::vector<ImageRecord> out;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const At a = at[i];
    ImageRecord rec;
    rec.source_id = integer(a.member(list[i], "id"), a / "id");
    const json& name = a.member(list[i], "file_name");
    if (!name.is_string() || name.get<std::string>().empty()) (a / "file_name").fail("must be a non-empty string");
    rec.image_path = (files.images / name.get<std::string>()).string();
    rec.id = fs::path(name.get<std::string>()).stem().string();
    rec.annotation = files.json_file.string() + ": " + a.path;
    const int64_t w = integer(a.member(list[i], "width"), a / "width"),
                  h = integer(a.member(list[i], "height"), a / "height");
    if (w < 1 || h < 1 || w > 1000000 || h > 1000000)
      a.fail("width and height must be whole numbers from 1 to 1000000, got " + std::to_string(w) + "x" +
             std::to_string(h));
    rec.width = static_cast<int>(w), rec.height = static_cast<int>(h);
    if (const auto [it, fresh] = index.emplace(rec.source_id, out.size()); !fresh)
      (a / "id").fail("image id " + std::to_string(rec.source_id) + " is also that of images[" +
                      std::to_string(it->second) + "]");
    out.push_back(std::move(rec));
  }
  return out;
}

void annotations(const json& root, const At& top, const std::unordered_map<int64_t, int>& label,
                 const std::unordered_map<int64_t, std::size_t>& index, const ParseOptions& options,
                 std::vector<ImageRecord>& recs, std::vector<ParseIssue>& issues) {
  const At at = top / "annotations";
  const json& list = array_member(root, "annotations", top);
  for (std::size_t i = 0; i < list.size(); ++i) {
    const At a = at[i];
    const json& ann = list[i];
    const int64_t image_id = integer(a.member(ann, "image_id"), a / "image_id");
    const auto img = index.find(image_id);
    if (img == index.end()) (a / "image_id").fail("no image has id " + std::to_string(image_id));
    ImageRecord& rec = recs[img->second];
    const int64_t cat = integer(a.member(ann, "category_id"), a / "category_id");
    const auto l = label.find(cat);
    if (l == label.end()) (a / "category_id").fail("no category has id " + std::to_string(cat));
    const json& bbox = a.member(ann, "bbox");
    if (!bbox.is_array() || bbox.size() != 4) (a / "bbox").fail("must be [x, y, width, height]");
    double v[4];
    for (std::size_t k = 0; k < 4; ++k) v[k] = number(bbox[k], (a / "bbox")[k]);
    if (v[2] < 0 || v[3] < 0) (a / "bbox").fail("a negative width or height");
    Object o;
    o.label = l->second;
    o.name = options.class_names[static_cast<std::size_t>(o.label)];
    const auto crowd = ann.find("iscrowd");
    o.crowd = crowd != ann.end() && integer(*crowd, a / "iscrowd") != 0;
    if (const auto area = ann.find("area"); area != ann.end()) o.area = number(*area, a / "area");
    o.difficult = o.crowd;
    if (!clip_box(v[0], v[1], v[0] + v[2], v[1] + v[3], rec, a.path, a.file, o, issues)) continue;
    if (o.difficult && !options.keep_difficult) {
      issues.push_back({ParseIssue::Kind::DroppedDifficult, a.file, a.file + ": " + a.path + ": crowd box"});
      continue;
    }
    rec.objects.push_back(o);
  }
}

}  // namespace

std::pair<std::vector<std::string>, std::string> coco_class_names(const DatasetSplit& entry) {
  const CocoFiles files = coco_files(entry);
  const std::string file = files.json_file.string();
  return {categories(read_json(files.json_file), At{file, "$"}).names, file};
}

void load_coco_entry(const DatasetSplit& entry, const ParseOptions& options, Dataset& ds) {
  const CocoFiles files = coco_files(entry);
  const std::string file = files.json_file.string();
  const json root = read_json(files.json_file);
  const At top{file, "$"};
  if (!root.is_object()) top.fail("must be an object with images, annotations and categories");
  const Categories cats = categories(root, top);
  check_class_names(cats.names, file, options.class_names);
  if (!ds.category_ids.empty() && ds.category_ids != cats.ids)
    throw Error(file + ": its category ids differ from those of the dataset's other COCO entries");
  ds.category_ids = cats.ids;
  std::unordered_map<int64_t, std::size_t> index;
  std::vector<ImageRecord> recs = images(root, top, files, index);
  annotations(root, top, cats.label, index, options, recs, ds.issues);
  for (auto& rec : recs) add_image(std::move(rec), options, ds);
  ds.sources.push_back(file + ": " + std::to_string(index.size()) + " images");
}

}  // namespace yolo2::data::formats
