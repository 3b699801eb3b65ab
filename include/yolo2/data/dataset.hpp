// A detection dataset, whatever its form on disk: Pascal VOC XML (voc.hpp), darknet / YOLO label
// files, or COCO JSON, chosen per entry of data.train / data.test (DatasetSplit::format, detected
// when `auto`). Every form becomes the same records, so the loader, `yolo2 stats`, the evaluation and
// `detect` do not know which one they read. Boxes inside the program are 0-based pixel x1,y1,x2,y2
// (design.md): VOC's 1-based XML coordinates are shifted by -1 once, at parse time; darknet's
// normalised centres and COCO's [x, y, w, h] are converted once too.
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
  bool difficult = false;  // VOC's flag; a COCO crowd box is difficult too (ignored by VOC's evaluation)
  bool truncated = false;
  bool crowd = false;  // COCO's iscrowd
  double area = 0;     // COCO's `area` (the segment's, in real COCO); 0: none given (w * h is used)
};

// One image and its annotation.
struct ImageRecord {
  std::string id;             // VOC image id ("000005", "2008_000123"); the file name without extension otherwise
  std::string image_path;     // absolute or relative to the cwd
  std::string annotation;     // the XML, the label file, or "instances.json: $.images[3]"
  int width = 0, height = 0;  // from <size>, the image header (darknet labels) or COCO's images[]
  int64_t source_id = -1;     // COCO's image id (results JSON); -1 for the other forms
  std::vector<Object> objects;
};

// How problems in annotations are handled. Every handled problem is recorded in ParseIssues
// so that `yolo2 stats` can list it and nothing is skipped silently.
struct ParseOptions {
  std::vector<std::string> class_names;  // required: names in label order
  bool keep_difficult = true;            // false drops difficult objects (darknet's training rule)
  // Unknown class names (or class ids beyond the names): an error by default; when true the object
  // is skipped and counted.
  bool skip_unknown_classes = false;
  // Empty or truncated images (data::check_image_file): an error by default; when true the image is
  // skipped and counted.
  bool skip_bad_images = false;
};

// A problem found while parsing that did not stop parsing (a counted, logged skip or fix).
struct ParseIssue {
  // BadImage stays the last: per-kind counts are sized by it.
  enum class Kind {
    ClippedBox,
    DegenerateBox,
    UnknownClass,
    DroppedDifficult,
    MissingImage,
    EmptyImage,
    MissingLabels,  // darknet labels: an image without a label file (darknet: an image without objects)
    BadImage
  };
  Kind kind;
  std::string file;     // the annotation (or image) it concerns
  std::string message;  // what was done, human readable
};
const char* to_string(ParseIssue::Kind kind);

// Images of one or more dataset entries, in list order.
struct Dataset {
  std::vector<ImageRecord> images;
  std::vector<std::string> class_names;
  std::vector<int64_t> category_ids;  // COCO: the category id of each label; empty for the other forms
  std::vector<ParseIssue> issues;     // every clip, drop and skip made while reading
  std::vector<std::string> sources;   // "root/ImageSets/Main/split.txt: N images"
};

// The form of an entry, `auto` resolved from what is on disk, in this order (Throws yolo2::Error
// naming the root when it matches none):
//   a .json file, or a folder with annotations/instances_<split>.json  -> coco
//   a .data, .yaml / .yml or .txt file                                 -> darknet
//   a folder with ImageSets/Main/<split>.txt or Annotations/           -> voc (even when darknet's
//     voc_label.py wrote labels/ into it)
//   a folder with obj.data, images/<split>/ or <split>.txt              -> darknet
DatasetFormat resolve_format(const DatasetSplit& entry);

// Reads every entry (each in its own form). The class names the dataset's own files give
// (darknet's names file, data.yaml's names, COCO's categories) must equal options.class_names, in
// order: an error names both lists. Errors (yolo2::Error) name the file and line or JSON path.
Dataset load_dataset(const std::vector<DatasetSplit>& entries, const ParseOptions& options);

// The class names an entry's own files give, or empty when they give none (a VOC root without
// classes.txt, a bare darknet list).
std::vector<std::string> dataset_class_names(const DatasetSplit& entry);

// Statistics for `yolo2 stats`.
struct DatasetStats {
  int images = 0, objects = 0, difficult = 0, truncated = 0, empty_images = 0;
  std::vector<int> objects_per_class, difficult_per_class, images_per_class;
  // Box size histogram on sqrt(box area / image area): bins [0, .05), [.05, .1), ... [.95, 1].
  std::vector<int> size_histogram;
  double min_side = 0, median_side = 0, max_side = 0;  // sqrt(relative area)
};
DatasetStats dataset_stats(const Dataset& dataset);
// A human-readable report: per-class table, size distribution and every recorded issue
// (up to max_issues lines, then a count).
std::string format_stats(const Dataset& dataset, const DatasetStats& stats, int max_issues = 50);

// A classes.txt or darknet .names file (one class name per line): blank lines skipped, surrounding
// blanks and Windows line ends trimmed, a UTF-8 byte-order mark dropped. Throws yolo2::Error naming
// the file (and line) when it cannot be read, lists a name twice or lists none.
std::vector<std::string> read_class_names(const std::string& path);

// The class names of a bare dataset root (`eval --data`, `stats --data`, `anchors --data`): `listed`
// when not empty, else the entry's own (dataset_class_names), else `fallback` (the config's).
std::vector<std::string> class_names_for_root(const DatasetSplit& entry, const std::vector<std::string>& listed,
                                              const std::vector<std::string>& fallback);

// The images data.skip_bad_images left out of `dataset`, for a warning: "N image(s) skipped
// (data.skip_bad_images): <file: problem>; ..." with at most `max_names` named; empty when none.
std::string skipped_images_summary(const Dataset& dataset, int max_names = 10);

}  // namespace yolo2::data
