#include "yolo2/data/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "formats.hpp"
#include "yolo2/data/image_io.hpp"
#include "yolo2/error.hpp"

namespace yolo2::data {
namespace fs = std::filesystem;

const char* to_string(ParseIssue::Kind kind) {
  switch (kind) {
    case ParseIssue::Kind::ClippedBox:
      return "clipped box";
    case ParseIssue::Kind::DegenerateBox:
      return "degenerate box dropped";
    case ParseIssue::Kind::UnknownClass:
      return "unknown class skipped";
    case ParseIssue::Kind::DroppedDifficult:
      return "difficult object not used";
    case ParseIssue::Kind::MissingImage:
      return "missing image skipped";
    case ParseIssue::Kind::EmptyImage:
      return "image without objects";
    case ParseIssue::Kind::MissingLabels:
      return "no label file (no objects)";
    case ParseIssue::Kind::BadImage:
      return "bad image skipped";
  }
  return "?";
}

namespace formats {

std::string trimmed(std::string s) {
  const auto not_space = [](unsigned char ch) { return !std::isspace(ch); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

std::vector<std::pair<int, std::string>> list_lines(std::istream& in) {
  std::vector<std::pair<int, std::string>> lines;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    if (++number == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    std::string entry = trimmed(line);
    if (!entry.empty()) lines.emplace_back(number, std::move(entry));
  }
  return lines;
}

namespace {

std::string joined(const std::vector<std::string>& names, std::size_t at_most = 8) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < at_most; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > at_most) s += ", ...";
  return s;
}

}  // namespace

void check_class_names(const std::vector<std::string>& dataset_names, const std::string& file,
                       const std::vector<std::string>& model_names) {
  if (dataset_names == model_names) return;
  std::string where;
  for (std::size_t i = 0; i < std::min(dataset_names.size(), model_names.size()) && where.empty(); ++i)
    if (dataset_names[i] != model_names[i])
      where = "; first difference at label " + std::to_string(i) + ": '" + dataset_names[i] + "' vs '" +
              model_names[i] + "'";
  throw Error(file + ": the dataset's " + std::to_string(dataset_names.size()) + " classes (" + joined(dataset_names) +
              ") differ from the model's " + std::to_string(model_names.size()) + " (data.classes: " +
              joined(model_names) + ")" + where + "; set data.classes to the dataset's names, in its order");
}

void add_image(ImageRecord rec, const ParseOptions& options, Dataset& ds) {
  // The cheap checks always; with skip_bad_images, a full decode too (damaged data inside a JPEG
  // shows only there), so that training never meets an image it cannot use.
  std::optional<std::string> bad = check_image_file(rec.image_path);
  if (!bad && options.skip_bad_images) {
    try {
      read_image_file(rec.image_path);
    } catch (const Error& e) {
      bad = e.what();
    }
  }
  if (bad) {
    if (!options.skip_bad_images) throw Error(*bad + " (data.skip_bad_images: true skips such images)");
    ds.issues.push_back({ParseIssue::Kind::BadImage, rec.image_path, *bad});
    return;
  }
  if (rec.objects.empty())
    ds.issues.push_back({ParseIssue::Kind::EmptyImage, rec.annotation, rec.annotation + ": no usable object"});
  ds.images.push_back(std::move(rec));
}

bool clip_box(double x1, double y1, double x2, double y2, const ImageRecord& rec, const std::string& where,
              const std::string& file, Object& o, std::vector<ParseIssue>& issues) {
  const double W = rec.width, H = rec.height;
  const double cx1 = std::clamp(x1, 0.0, W), cx2 = std::clamp(x2, 0.0, W);
  const double cy1 = std::clamp(y1, 0.0, H), cy2 = std::clamp(y2, 0.0, H);
  std::ostringstream os;
  os << where << ": '" << o.name << "' box (" << x1 << "," << y1 << "," << x2 << "," << y2 << " px)";
  if (!(cx2 > cx1) || !(cy2 > cy1)) {
    os << " is empty or outside the " << rec.width << "x" << rec.height << " image";
    issues.push_back({ParseIssue::Kind::DegenerateBox, file, os.str()});
    return false;
  }
  if (cx1 != x1 || cx2 != x2 || cy1 != y1 || cy2 != y2) {
    os << " clipped to the " << rec.width << "x" << rec.height << " image";
    issues.push_back({ParseIssue::Kind::ClippedBox, file, os.str()});
  }
  o.x1 = static_cast<float>(cx1), o.y1 = static_cast<float>(cy1);
  o.x2 = static_cast<float>(cx2), o.y2 = static_cast<float>(cy2);
  return true;
}

}  // namespace formats

namespace {

// What is on disk, or nothing when it matches no form.
std::optional<DatasetFormat> detect_format(const DatasetSplit& entry) {
  if (entry.format != DatasetFormat::Auto) return entry.format;
  const fs::path root(entry.root);
  std::error_code ec;
  if (fs::is_regular_file(root, ec)) {
    std::string ext = root.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (ext == ".json") return DatasetFormat::Coco;
    if (ext == ".data" || ext == ".yaml" || ext == ".yml" || ext == ".txt") return DatasetFormat::Darknet;
    return std::nullopt;
  }
  // COCO first: on a case-insensitive file system its annotations/ is also Annotations/.
  if (fs::is_regular_file(root / "annotations" / ("instances_" + entry.split + ".json"), ec))
    return DatasetFormat::Coco;
  if (fs::is_regular_file(root / "ImageSets" / "Main" / (entry.split + ".txt"), ec) ||
      fs::is_directory(root / "Annotations", ec))
    return DatasetFormat::Voc;
  if (fs::is_regular_file(root / "obj.data", ec) || fs::is_directory(root / "images" / entry.split, ec) ||
      fs::is_regular_file(root / (entry.split + ".txt"), ec))
    return DatasetFormat::Darknet;
  return std::nullopt;
}

}  // namespace

DatasetFormat resolve_format(const DatasetSplit& entry) {
  if (const auto f = detect_format(entry)) return *f;
  std::error_code ec;
  if (!fs::exists(entry.root, ec)) throw Error(entry.root + ": the dataset root does not exist");
  if (fs::is_regular_file(entry.root, ec))
    throw Error(entry.root +
                ": a dataset file must be COCO .json, darknet .data, ultralytics .yaml or a .txt image "
                "list (or give the entry `format: voc|darknet|coco`)");
  throw Error(entry.root + ": not a dataset yolo2 recognises for split '" + entry.split + "' (VOC: ImageSets/Main/" +
              entry.split + ".txt; COCO: annotations/instances_" + entry.split + ".json; darknet: obj.data, images/" +
              entry.split + "/ or " + entry.split + ".txt); give the entry `format: voc|darknet|coco`");
}

namespace {

// Image ids name results-file lines (VOC's comp4 files, COCO's results JSON), so they are unique over
// the whole dataset, whatever the forms of its entries: the file stem, and COCO's number.
void check_unique_ids(const Dataset& ds) {
  std::unordered_map<std::string, const ImageRecord*> by_id;
  std::unordered_map<int64_t, const ImageRecord*> by_number;
  for (const auto& im : ds.images) {
    if (const auto [at, fresh] = by_id.emplace(im.id, &im); !fresh)
      throw Error(im.image_path + ": image id '" + im.id + "' (the file name without extension) is also that of " +
                  at->second->image_path + "; ids name results-file lines and must be unique in a dataset");
    if (im.source_id < 0) continue;
    if (const auto [at, fresh] = by_number.emplace(im.source_id, &im); !fresh)
      throw Error(im.annotation + ": COCO image id " + std::to_string(im.source_id) + " is also that of " +
                  at->second->annotation + "; ids name results-file entries and must be unique in a dataset");
  }
}

}  // namespace

Dataset load_dataset(const std::vector<DatasetSplit>& entries, const ParseOptions& options) {
  if (entries.empty()) throw Error("no dataset given (data.train / data.test is empty)");
  Dataset ds;
  ds.class_names = options.class_names;
  for (const auto& e : entries) switch (resolve_format(e)) {
      case DatasetFormat::Voc:
        formats::load_voc_entry(e, options, ds);
        break;
      case DatasetFormat::Darknet:
        formats::load_darknet_entry(e, options, ds);
        break;
      case DatasetFormat::Coco:
        formats::load_coco_entry(e, options, ds);
        break;
      case DatasetFormat::Auto:
        break;  // resolved above
    }
  check_unique_ids(ds);
  return ds;
}

std::vector<std::string> dataset_class_names(const DatasetSplit& entry) {
  switch (detect_format(entry).value_or(DatasetFormat::Voc)) {
    case DatasetFormat::Darknet:
      return formats::darknet_class_names(entry).first;
    case DatasetFormat::Coco:
      return formats::coco_class_names(entry).first;
    default: {
      const auto file = fs::path(entry.root) / "classes.txt";  // as `yolo2 synth` writes it
      std::error_code ec;
      return fs::exists(file, ec) ? read_class_names(file.string()) : std::vector<std::string>{};
    }
  }
}

std::vector<std::string> class_names_for_root(const DatasetSplit& entry, const std::vector<std::string>& listed,
                                              const std::vector<std::string>& fallback) {
  if (!listed.empty()) return listed;
  std::vector<std::string> own = dataset_class_names(entry);
  return own.empty() ? fallback : own;
}

std::vector<std::string> read_class_names(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the class list");
  std::vector<std::string> names;
  for (const auto& [number, name] : formats::list_lines(in)) {
    if (std::find(names.begin(), names.end(), name) != names.end())
      throw Error(path + ":" + std::to_string(number) + ": class '" + name + "' is listed twice");
    names.push_back(name);
  }
  if (names.empty()) throw Error(path + ": lists no class");
  return names;
}

DatasetStats dataset_stats(const Dataset& ds) {
  DatasetStats st;
  const std::size_t nc = ds.class_names.size();
  st.objects_per_class.assign(nc, 0);
  st.difficult_per_class.assign(nc, 0);
  st.images_per_class.assign(nc, 0);
  st.size_histogram.assign(20, 0);
  std::vector<double> sides;
  for (const auto& img : ds.images) {
    ++st.images;
    if (img.objects.empty()) ++st.empty_images;
    std::vector<bool> present(nc, false);
    for (const auto& o : img.objects) {
      ++st.objects;
      ++st.objects_per_class[static_cast<std::size_t>(o.label)];
      present[static_cast<std::size_t>(o.label)] = true;
      if (o.difficult) ++st.difficult, ++st.difficult_per_class[static_cast<std::size_t>(o.label)];
      if (o.truncated) ++st.truncated;
      const double rel =
          std::sqrt(std::max(0.0, double(o.x2 - o.x1) * (o.y2 - o.y1)) / (double(img.width) * img.height));
      sides.push_back(rel);
      ++st.size_histogram[static_cast<std::size_t>(std::min(19, static_cast<int>(rel * 20)))];
    }
    for (std::size_t c = 0; c < nc; ++c) st.images_per_class[c] += present[c];
  }
  if (!sides.empty()) {
    std::sort(sides.begin(), sides.end());
    st.min_side = sides.front();
    st.max_side = sides.back();
    st.median_side = sides[sides.size() / 2];
  }
  return st;
}

std::string format_stats(const Dataset& ds, const DatasetStats& st, int max_issues) {
  std::ostringstream os;
  for (const auto& s : ds.sources) os << "  " << s << "\n";
  os << "  images " << st.images << ", objects " << st.objects << " (difficult " << st.difficult << ", truncated "
     << st.truncated << "), images without objects " << st.empty_images << "\n\n";
  std::size_t w = 5;
  for (const auto& n : ds.class_names) w = std::max(w, n.size());
  os << "  " << std::left << std::setw(static_cast<int>(w)) << "class" << std::right << std::setw(9) << "images"
     << std::setw(9) << "objects" << std::setw(11) << "difficult" << std::setw(8) << "share\n";
  for (std::size_t c = 0; c < ds.class_names.size(); ++c) {
    const double share = st.objects ? 100.0 * st.objects_per_class[c] / st.objects : 0.0;
    os << "  " << std::left << std::setw(static_cast<int>(w)) << ds.class_names[c] << std::right << std::setw(9)
       << st.images_per_class[c] << std::setw(9) << st.objects_per_class[c] << std::setw(11)
       << st.difficult_per_class[c] << std::setw(6) << std::fixed << std::setprecision(1) << share << "%\n";
  }
  os << "\n  box size sqrt(area/image area): min " << std::setprecision(3) << st.min_side << ", median "
     << st.median_side << ", max " << st.max_side << "\n";
  const int peak = std::max(1, *std::max_element(st.size_histogram.begin(), st.size_histogram.end()));
  for (std::size_t b = 0; b < st.size_histogram.size(); ++b) {
    os << "  [" << std::setprecision(2) << static_cast<double>(b) * 0.05 << ", " << static_cast<double>(b + 1) * 0.05
       << ") " << std::setw(7) << st.size_histogram[b] << " "
       << std::string(static_cast<std::size_t>(40.0 * st.size_histogram[b] / peak), '#') << "\n";
  }
  if (!ds.issues.empty()) {
    std::vector<int> per_kind(static_cast<std::size_t>(ParseIssue::Kind::BadImage) + 1, 0);  // the last kind
    for (const auto& i : ds.issues) ++per_kind[static_cast<std::size_t>(i.kind)];
    os << "\n  problems handled:";
    for (std::size_t k = 0; k < per_kind.size(); ++k)
      if (per_kind[k]) os << " " << to_string(static_cast<ParseIssue::Kind>(k)) << " " << per_kind[k] << ";";
    os << "\n";
    int shown = 0;
    for (const auto& i : ds.issues) {
      if (i.kind == ParseIssue::Kind::DroppedDifficult) continue;  // counted above, by design
      if (shown++ >= max_issues) break;
      os << "    " << to_string(i.kind) << ": " << i.message << "\n";
    }
    if (shown > max_issues) os << "    ... (more not shown)\n";
  }
  return os.str();
}

std::string skipped_images_summary(const Dataset& dataset, int max_names) {
  std::vector<const ParseIssue*> bad;
  for (const auto& i : dataset.issues)
    if (i.kind == ParseIssue::Kind::BadImage) bad.push_back(&i);
  if (bad.empty()) return {};
  std::string out = std::to_string(bad.size()) + " image(s) skipped (data.skip_bad_images): ";
  for (std::size_t k = 0; k < bad.size() && k < static_cast<std::size_t>(max_names); ++k)
    out += (k ? "; " : "") + bad[k]->message;
  if (bad.size() > static_cast<std::size_t>(max_names)) out += "; ... (`yolo2 stats` lists them all)";
  return out;
}

}  // namespace yolo2::data
