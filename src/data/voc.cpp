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

#include "formats.hpp"
#include "yolo2/data/image_io.hpp"
#include "yolo2/error.hpp"

namespace yolo2::data {

using formats::list_lines;
using formats::trimmed;

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
  rec.annotation = xml_path;
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

namespace formats {

void load_voc_entry(const DatasetSplit& entry, const ParseOptions& options, Dataset& ds) {
  if (entry.split.empty()) throw Error(entry.root + ": a VOC root needs a split (ImageSets/Main/<split>.txt)");
  const std::filesystem::path root(entry.root);
  const std::string split_file = (root / "ImageSets" / "Main" / (entry.split + ".txt")).string();
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
      throw Error((root / "JPEGImages" / (id + ".jpg")).string() + ": image of '" + id + "' (listed in " + split_file +
                  ") does not exist");
    add_image(std::move(rec), options, ds);
  }
  ds.sources.push_back(split_file + ": " + std::to_string(ids.size()) + " images");
}

}  // namespace formats

}  // namespace yolo2::data
