#include "yolo2/eval/coco_json.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "yolo2/error.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::eval {
namespace {

using nlohmann::json;

// The category id of a label: COCO's own, or label + 1.
int64_t category_id(const data::Dataset& ds, int label) {
  return ds.category_ids.empty() ? label + 1 : ds.category_ids[static_cast<std::size_t>(label)];
}

json image_id(const data::ImageRecord& rec) { return rec.source_id >= 0 ? json(rec.source_id) : json(rec.id); }

// A value's JSON text (invalid UTF-8 replaced rather than thrown on: ids come from file names). A
// whole-number float id (1.0) reads as the integer, as pycocotools takes it.
std::string text(const json& v) {
  if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() && std::abs(v.get<double>()) < 9e15)
    return std::to_string(static_cast<int64_t>(v.get<double>()));
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::vector<CocoGroundTruth> coco_ground_truth(const data::Dataset& ds) {
  std::vector<CocoGroundTruth> out;
  for (std::size_t i = 0; i < ds.images.size(); ++i)
    for (const data::Object& o : ds.images[i].objects) {
      CocoGroundTruth g;
      g.image = static_cast<int>(i);
      g.label = o.label;
      g.x = o.x1, g.y = o.y1, g.w = double(o.x2) - o.x1, g.h = double(o.y2) - o.y1;
      g.area = o.area > 0 ? o.area : g.w * g.h;
      g.crowd = o.crowd;
      g.ignore = o.crowd || o.difficult;
      out.push_back(g);
    }
  return out;
}

std::vector<int> coco_image_order(const data::Dataset& ds) {
  std::vector<int> order(ds.images.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return ds.images[static_cast<std::size_t>(a)].source_id < ds.images[static_cast<std::size_t>(b)].source_id;
  });
  return order;
}

std::vector<CocoDetection> coco_detections(const std::vector<Detection>& detections) {
  std::vector<CocoDetection> out;
  out.reserve(detections.size());
  for (const Detection& d : detections)
    out.push_back(
        {d.image, d.label, d.box.x1, d.box.y1, double(d.box.x2) - d.box.x1, double(d.box.y2) - d.box.y1, d.score});
  return out;
}

std::vector<Detection> voc_detections(const std::vector<CocoDetection>& detections) {
  std::vector<Detection> out;
  out.reserve(detections.size());
  for (const CocoDetection& d : detections)
    out.push_back({d.image,
                   d.label,
                   static_cast<float>(d.score),
                   {static_cast<float>(d.x), static_cast<float>(d.y), static_cast<float>(d.x + d.w),
                    static_cast<float>(d.y + d.h)}});
  return out;
}

void write_coco_results(const std::string& path, const data::Dataset& ds, const std::vector<Detection>& detections) {
  json out = json::array();
  for (const Detection& d : detections) {
    if (d.image < 0 || static_cast<std::size_t>(d.image) >= ds.images.size() || d.label < 0 ||
        static_cast<std::size_t>(d.label) >= ds.class_names.size())
      throw Error(path + ": a detection of image " + std::to_string(d.image) + " / class " + std::to_string(d.label) +
                  " is out of range");
    out.push_back({{"image_id", image_id(ds.images[static_cast<std::size_t>(d.image)])},
                   {"category_id", category_id(ds, d.label)},
                   {"bbox", {d.box.x1, d.box.y1, double(d.box.x2) - d.box.x1, double(d.box.y2) - d.box.y1}},
                   {"score", d.score}});
  }
  util::write_file_atomic(path, out.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
}

std::vector<CocoDetection> read_coco_results(const std::string& path, const data::Dataset& ds) {
  json doc;
  try {
    doc = json::parse(util::read_file(path));
  } catch (const json::parse_error& e) {
    throw Error(path + ": malformed JSON (byte " + std::to_string(e.byte) + ": " + e.what() + ")");
  } catch (const json::exception& e) {  // e.g. a number beyond a double's range
    throw Error(path + ": unreadable JSON (" + e.what() + ")");
  }
  if (!doc.is_array()) throw Error(path + ": a COCO results file is a list of {image_id, category_id, bbox, score}");
  std::unordered_map<std::string, int> images;  // the id's JSON text -> index
  for (std::size_t i = 0; i < ds.images.size(); ++i) images.emplace(text(image_id(ds.images[i])), static_cast<int>(i));
  std::unordered_map<int64_t, int> labels;
  for (std::size_t k = 0; k < ds.class_names.size(); ++k)
    labels.emplace(category_id(ds, static_cast<int>(k)), static_cast<int>(k));
  std::vector<CocoDetection> out;
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const std::string at = path + ": $[" + std::to_string(i) + "]";
    const json& e = doc[i];
    if (!e.is_object()) throw Error(at + ": must be an object");
    for (const char* key : {"image_id", "category_id", "bbox", "score"})
      if (!e.contains(key)) throw Error(at + ": has no \"" + key + "\"");
    const auto img = images.find(text(e["image_id"]));
    if (img == images.end()) throw Error(at + ".image_id: no image " + e["image_id"].dump() + " in the dataset");
    const json& cat = e["category_id"];
    const auto lab = cat.is_number_integer() ? labels.find(cat.get<int64_t>()) : labels.end();
    if (lab == labels.end()) throw Error(at + ".category_id: no category " + cat.dump() + " in the dataset");
    const json& b = e["bbox"];
    bool ok = b.is_array() && b.size() == 4;
    for (std::size_t k = 0; ok && k < 4; ++k) ok = b[k].is_number() && std::isfinite(b[k].get<double>());
    if (!ok || b[2].get<double>() < 0 || b[3].get<double>() < 0)
      throw Error(at + ".bbox: must be [x, y, width, height], finite, width and height >= 0");
    if (!e["score"].is_number() || !std::isfinite(e["score"].get<double>()))
      throw Error(at + ".score: must be a finite number");
    out.push_back({img->second, lab->second, b[0].get<double>(), b[1].get<double>(), b[2].get<double>(),
                   b[3].get<double>(), e["score"].get<double>()});
  }
  return out;
}

}  // namespace yolo2::eval
