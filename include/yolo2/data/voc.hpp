// Pascal VOC annotations: parsing VOC XML files and VOCdevkit-style datasets.
// Boxes inside the program are 0-based pixel x1,y1,x2,y2 (design.md): VOC's 1-based XML
// coordinates are shifted by -1 once, here, at parse time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "yolo2/data/choices.hpp"

namespace yolo2::data {

// One annotated object. Coordinates: 0-based pixels, x1 <= x2, y1 <= y2 (VOC's inclusive
// corners minus one, so a box covering pixels 0..9 has x1 = 0, x2 = 9).
struct Object {
  std::string name;
  int label = -1;  // index into the configured class list
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  bool difficult = false;
  bool truncated = false;
};

// One image and its annotation.
struct ImageRecord {
  std::string id;          // VOC image id, e.g. "000005" or "2008_000123"
  std::string image_path;  // JPEGImages/<id>.jpg (absolute or relative to the cwd)
  std::string xml_path;
  int width = 0, height = 0;  // from <size>
  std::vector<Object> objects;
};

// How problems in annotations are handled. Every handled problem is recorded in ParseIssues
// so that `yolo2 data` (the statistics verb) can list it and nothing is skipped silently.
struct ParseOptions {
  std::vector<std::string> class_names;  // required: names in label order
  bool keep_difficult = true;            // false drops difficult objects (darknet's training rule)
  // Unknown class names: an error by default; when true the object is skipped and counted.
  bool skip_unknown_classes = false;
  // Empty or truncated images (data::check_image_file): an error by default; when true the image is
  // skipped and counted.
  bool skip_bad_images = false;
};

// A problem found while parsing that did not stop parsing (a counted, logged skip or fix).
struct ParseIssue {
  // BadImage stays the last: per-kind counts are sized by it.
  enum class Kind { ClippedBox, DegenerateBox, UnknownClass, DroppedDifficult, MissingImage, EmptyImage, BadImage };
  Kind kind;
  std::string file;     // the XML (or image) it concerns
  std::string message;  // what was done, human readable
};
const char* to_string(ParseIssue::Kind kind);

// Parses one VOC XML annotation. Rules (documented in README, "Bad data"):
//  - only <object> children of <annotation> are objects (a person's <part> boxes are not);
//  - a missing <difficult> or <truncated> means 0; float coordinates are accepted;
//  - boxes reaching outside [0, width-1] x [0, height-1] are clipped (issue ClippedBox);
//  - boxes with x2 < x1 or y2 < y1 after clipping are dropped (issue DegenerateBox);
//  - an unknown class name throws yolo2::Error (file, line, name) unless skip_unknown_classes;
//  - a missing or unreadable file, malformed XML (file and byte offset/line) or a missing
//    <size>/<bndbox> field throws yolo2::Error naming the file and element.
// `image_path` of the result is left empty: the dataset fills it.
ImageRecord parse_voc_xml(const std::string& xml_path, const ParseOptions& options, std::vector<ParseIssue>* issues);

// Images of one or more VOC (root, split) pairs, in list order.
struct VocDataset {
  std::vector<ImageRecord> images;
  std::vector<std::string> class_names;
  std::vector<ParseIssue> issues;    // every clip, drop and skip made while reading
  std::vector<std::string> sources;  // "root/ImageSets/Main/split.txt: N images"
};

// Reads <root>/ImageSets/Main/<split>.txt of each pair, then <root>/Annotations/<id>.xml, with the
// image at <root>/JPEGImages/<id>.jpg. Errors (yolo2::Error naming the file): a missing split
// file, an empty split, a missing XML, a missing image. Per-object problems follow parse_voc_xml.
VocDataset load_voc(const std::vector<DatasetSplit>& splits, const ParseOptions& options);

// Statistics for `yolo2 stats`.
struct DatasetStats {
  int images = 0, objects = 0, difficult = 0, truncated = 0, empty_images = 0;
  std::vector<int> objects_per_class, difficult_per_class, images_per_class;
  // Box size histogram on sqrt(box area / image area): bins [0, .05), [.05, .1), ... [.95, 1].
  std::vector<int> size_histogram;
  double min_side = 0, median_side = 0, max_side = 0;  // sqrt(relative area)
};
DatasetStats dataset_stats(const VocDataset& dataset);
// A human-readable report: per-class table, size distribution and every recorded issue
// (up to max_issues lines, then a count).
std::string format_stats(const VocDataset& dataset, const DatasetStats& stats, int max_issues = 50);

// A classes.txt (one class name per line, as `yolo2 synth` writes it beside a VOC root): blank lines
// skipped, surrounding blanks and Windows line ends trimmed, a UTF-8 byte-order mark dropped. Throws
// yolo2::Error naming the file (and line) when it cannot be read, lists a name twice or lists none.
std::vector<std::string> read_class_names(const std::string& path);

// The class names of a bare VOC root (`eval --data`, `stats --root`): `listed` when not empty, else
// <root>/classes.txt (as `yolo2 synth` writes it), else `fallback` (the config's).
std::vector<std::string> class_names_for_root(const std::string& root, const std::vector<std::string>& listed,
                                              const std::vector<std::string>& fallback);

// The images data.skip_bad_images left out of `dataset`, for a warning: "N image(s) skipped
// (data.skip_bad_images): <file: problem>; ..." with at most `max_names` named; empty when none.
std::string skipped_images_summary(const VocDataset& dataset, int max_names = 10);

}  // namespace yolo2::data
