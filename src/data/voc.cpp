#include "yolo2/data/voc.hpp"

#include <pugixml.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_map>

#include "yolo2/data/image_io.hpp"
#include "yolo2/error.hpp"

namespace yolo2::data {

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
    case ParseIssue::Kind::BadImage:
      return "bad image skipped";
  }
  return "?";
}

namespace {

// Line number of a byte offset, for error messages.
int line_of(const std::string& text, std::ptrdiff_t offset) {
  if (offset < 0) return 0;
  const auto end = text.begin() + std::min<std::ptrdiff_t>(offset, static_cast<std::ptrdiff_t>(text.size()));
  return 1 + static_cast<int>(std::count(text.begin(), end, '\n'));
}

struct XmlContext {
  const std::string& path;
  const std::string& text;
  std::string at(const pugi::xml_node& node) const {
    return path + ":" + std::to_string(line_of(text, node.offset_debug()));
  }
};

double number(const XmlContext& ctx, const pugi::xml_node& parent, const char* name) {
  const pugi::xml_node node = parent.child(name);
  if (!node) throw Error(ctx.at(parent) + ": <" + parent.name() + "> has no <" + name + ">");
  const std::string text = node.text().as_string();
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  // Allow surrounding whitespace, nothing else.
  while (end && *end && std::isspace(static_cast<unsigned char>(*end))) ++end;
  if (text.empty() || end == text.c_str() || (end && *end) || !std::isfinite(v))
    throw Error(ctx.at(node) + ": <" + name + "> is not a number: '" + text + "'");
  return v;
}

// VOC flags are 0/1, missing means 0.
bool flag(const XmlContext& ctx, const pugi::xml_node& object, const char* name) {
  const pugi::xml_node node = object.child(name);
  if (!node) return false;
  return number(ctx, object, name) != 0.0;
}

std::string trimmed(std::string s) {
  const auto not_space = [](unsigned char ch) { return !std::isspace(ch); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

std::string read_annotation_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open annotation file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The image's <size>; boxes are clipped against it, so it must be there and positive.
void read_size(const XmlContext& ctx, const pugi::xml_node& root, ImageRecord& rec) {
  const pugi::xml_node size = root.child("size");
  if (!size) throw Error(ctx.at(root) + ": <annotation> has no <size>");
  // Checked as numbers first: 1e30 must not become a wrapped int.
  const double w = number(ctx, size, "width"), h = number(ctx, size, "height");
  const auto pixels = [](double v) { return v >= 1 && v <= 1e6 && v == std::floor(v); };
  if (!pixels(w) || !pixels(h)) {
    std::ostringstream os;
    os << ctx.at(size) << ": image size must be a whole number of pixels from 1 to 1000000, got " << w << "x" << h;
    throw Error(os.str());
  }
  rec.width = static_cast<int>(w);
  rec.height = static_cast<int>(h);
}

using Note = std::function<void(ParseIssue::Kind, const std::string&)>;

// Reads <bndbox> into o (0-based, clipped to the image). False when the box is empty or
// entirely outside the image: such an object is noted and dropped, not an error.
bool read_box(const XmlContext& ctx, const pugi::xml_node& obj, const ImageRecord& rec, Object& o, const Note& note) {
  const pugi::xml_node box = obj.child("bndbox");
  if (!box) throw Error(ctx.at(obj) + ": <object> '" + o.name + "' has no <bndbox>");
  // VOC pixel coordinates are 1-based: shift once, here.
  const double x1 = number(ctx, box, "xmin") - 1, y1 = number(ctx, box, "ymin") - 1;
  const double x2 = number(ctx, box, "xmax") - 1, y2 = number(ctx, box, "ymax") - 1;
  const double cx1 = std::clamp(x1, 0.0, rec.width - 1.0), cx2 = std::clamp(x2, 0.0, rec.width - 1.0);
  const double cy1 = std::clamp(y1, 0.0, rec.height - 1.0), cy2 = std::clamp(y2, 0.0, rec.height - 1.0);
  const bool outside = x2 < 0 || y2 < 0 || x1 > rec.width - 1.0 || y1 > rec.height - 1.0;
  if (x2 < x1 || y2 < y1 || outside) {
    std::ostringstream os;
    os << ctx.at(box) << ": '" << o.name << "' box (" << x1 + 1 << "," << y1 + 1 << "," << x2 + 1 << "," << y2 + 1
       << ") is empty or outside the " << rec.width << "x" << rec.height << " image";
    note(ParseIssue::Kind::DegenerateBox, os.str());
    return false;
  }
  if (cx1 != x1 || cx2 != x2 || cy1 != y1 || cy2 != y2) {
    std::ostringstream os;
    os << ctx.at(box) << ": '" << o.name << "' box (" << x1 + 1 << "," << y1 + 1 << "," << x2 + 1 << "," << y2 + 1
       << ") clipped to the " << rec.width << "x" << rec.height << " image";
    note(ParseIssue::Kind::ClippedBox, os.str());
  }
  o.x1 = static_cast<float>(cx1);
  o.y1 = static_cast<float>(cy1);
  o.x2 = static_cast<float>(cx2);
  o.y2 = static_cast<float>(cy2);
  return true;
}

// One <object>; nothing when it is skipped (unknown class, unusable box, unwanted difficult).
std::optional<Object> read_object(const XmlContext& ctx, const pugi::xml_node& obj, const ImageRecord& rec,
                                  const ParseOptions& options, const Note& note) {
  Object o;
  o.name = trimmed(obj.child("name").text().as_string());
  if (o.name.empty()) throw Error(ctx.at(obj) + ": <object> has no <name>");
  const auto it = std::find(options.class_names.begin(), options.class_names.end(), o.name);
  if (it == options.class_names.end()) {
    if (!options.skip_unknown_classes)
      throw Error(ctx.at(obj) + ": unknown class '" + o.name +
                  "' (not in data.classes; set data.skip_unknown_classes to skip such objects)");
    note(ParseIssue::Kind::UnknownClass, ctx.at(obj) + ": '" + o.name + "'");
    return std::nullopt;
  }
  o.label = static_cast<int>(it - options.class_names.begin());
  o.difficult = flag(ctx, obj, "difficult");
  o.truncated = flag(ctx, obj, "truncated");
  if (!read_box(ctx, obj, rec, o, note)) return std::nullopt;
  if (o.difficult && !options.keep_difficult) {
    note(ParseIssue::Kind::DroppedDifficult, ctx.at(obj) + ": '" + o.name + "'");
    return std::nullopt;
  }
  return o;
}

}  // namespace

ImageRecord parse_voc_xml(const std::string& xml_path, const ParseOptions& options, std::vector<ParseIssue>* issues) {
  const std::string text = read_annotation_text(xml_path);
  pugi::xml_document doc;
  const pugi::xml_parse_result parsed = doc.load_buffer(text.data(), text.size());
  if (!parsed)
    throw Error(xml_path + ":" + std::to_string(line_of(text, parsed.offset)) + ": malformed XML (" +
                parsed.description() + ", byte " + std::to_string(parsed.offset) + ")");
  const XmlContext ctx{xml_path, text};
  const pugi::xml_node root = doc.child("annotation");
  if (!root) throw Error(xml_path + ": no <annotation> root element");

  ImageRecord rec;
  rec.xml_path = xml_path;
  rec.id = std::filesystem::path(xml_path).stem().string();
  read_size(ctx, root, rec);
  const Note note = [&](ParseIssue::Kind kind, const std::string& message) {
    if (issues) issues->push_back({kind, xml_path, message});
  };
  // Only direct <object> children: a person's <part> boxes are nested inside its <object>.
  for (const pugi::xml_node obj : root.children("object"))
    if (auto o = read_object(ctx, obj, rec, options, note)) rec.objects.push_back(std::move(*o));
  return rec;
}

namespace {

// The non-blank lines of a list file (split lists, classes.txt), trimmed (Windows line ends and
// stray blanks are not part of an entry), with their 1-based numbers; a UTF-8 byte-order mark, which
// editors on Windows add, is dropped from the first.
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

std::vector<std::string> read_split_ids(const std::string& split_file) {
  std::ifstream in(split_file);
  if (!in) throw Error(split_file + ": cannot open image-set file (is the VOC root right?)");
  std::vector<std::string> ids;
  std::unordered_map<std::string, int> first_line;  // id -> the line that listed it first
  for (const auto& [line_no, id] : list_lines(in)) {
    // Per-class set files have "id flag"; the main ones only "id". Take the first field.
    const auto space = id.find_first_of(" \t");
    ids.push_back(space == std::string::npos ? id : id.substr(0, space));
    // An id names files (Annotations/<id>.xml): a damaged or binary list is named here, not met as a
    // file-system error (found by fuzzing: an over-long id escaped as std::filesystem's exception).
    const std::string& last = ids.back();
    const bool control =
        std::any_of(last.begin(), last.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x20; });
    if (last.size() > 200 || control || last.find('/') != std::string::npos)
      throw Error(
          split_file + ":" + std::to_string(line_no) + ": '" +
          (control ? std::string("(control characters)") : last.substr(0, 60)) +
          "' is not an image id (a file name without folder: at most 200 bytes, no '/', no control characters)");
    // An image listed twice would be trained on twice per epoch and scored twice (its results-file
    // lines could no longer be told apart): a mistake in the list, named rather than guessed at.
    if (const auto [at, fresh] = first_line.emplace(ids.back(), line_no); !fresh)
      throw Error(split_file + ":" + std::to_string(line_no) + ": image id '" + ids.back() +
                  "' is listed again (first at line " + std::to_string(at->second) +
                  "); each image once per split file");
  }
  return ids;
}

std::string find_image(const std::filesystem::path& root, const std::string& id) {
  for (const char* ext : {".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG"}) {
    const auto p = root / "JPEGImages" / (id + ext);
    std::error_code ec;
    if (std::filesystem::exists(p, ec)) return p.string();
  }
  return {};
}

}  // namespace

VocDataset load_voc(const std::vector<DatasetSplit>& splits, const ParseOptions& options) {
  if (splits.empty()) throw Error("no dataset given (data.train / data.test is empty)");
  VocDataset ds;
  ds.class_names = options.class_names;
  for (const auto& s : splits) {
    const std::filesystem::path root(s.root);
    const std::string split_file = (root / "ImageSets" / "Main" / (s.split + ".txt")).string();
    const std::vector<std::string> ids = read_split_ids(split_file);
    if (ids.empty()) throw Error(split_file + ": the split lists no images");
    for (const auto& id : ids) {
      const std::string xml = (root / "Annotations" / (id + ".xml")).string();
      std::error_code ec;
      if (!std::filesystem::exists(xml, ec))
        throw Error(xml + ": annotation of image '" + id + "' (listed in " + split_file + ") does not exist");
      ImageRecord rec = parse_voc_xml(xml, options, &ds.issues);
      rec.id = id;
      rec.image_path = find_image(root, id);
      if (rec.image_path.empty())
        throw Error((root / "JPEGImages" / (id + ".jpg")).string() + ": image of '" + id + "' (listed in " +
                    split_file + ") does not exist");
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
        continue;
      }
      if (rec.objects.empty()) ds.issues.push_back({ParseIssue::Kind::EmptyImage, xml, xml + ": no usable object"});
      ds.images.push_back(std::move(rec));
    }
    ds.sources.push_back(split_file + ": " + std::to_string(ids.size()) + " images");
  }
  return ds;
}

DatasetStats dataset_stats(const VocDataset& ds) {
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

std::string format_stats(const VocDataset& ds, const DatasetStats& st, int max_issues) {
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

std::vector<std::string> class_names_for_root(const std::string& root, const std::vector<std::string>& listed,
                                              const std::vector<std::string>& fallback) {
  if (!listed.empty()) return listed;
  const auto file = std::filesystem::path(root) / "classes.txt";
  if (std::filesystem::exists(file)) return read_class_names(file.string());
  return fallback;
}

std::vector<std::string> read_class_names(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the class list");
  std::vector<std::string> names;
  for (const auto& [number, name] : list_lines(in)) {
    if (std::find(names.begin(), names.end(), name) != names.end())
      throw Error(path + ":" + std::to_string(number) + ": class '" + name + "' is listed twice");
    names.push_back(name);
  }
  if (names.empty()) throw Error(path + ": lists no class");
  return names;
}

std::string skipped_images_summary(const VocDataset& dataset, int max_names) {
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
