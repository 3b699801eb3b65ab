// The dataset formats behind data::load_dataset (dataset.hpp), one loader each, and what they share:
// a list file's lines, the checks every image gets, and the class-list comparison.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "yolo2/data/dataset.hpp"

namespace yolo2::data::formats {

// Each loader appends the entry's images (and its issues and a `sources` line) to `ds`.
void load_voc_entry(const DatasetSplit& entry, const ParseOptions& options, Dataset& ds);
void load_darknet_entry(const DatasetSplit& entry, const ParseOptions& options, Dataset& ds);
void load_coco_entry(const DatasetSplit& entry, const ParseOptions& options, Dataset& ds);

// The class names the entry's own files give (obj.names, data.yaml's names, COCO's categories,
// a VOC root's classes.txt), with the file they come from; empty names when it has none.
std::pair<std::vector<std::string>, std::string> darknet_class_names(const DatasetSplit& entry);
std::pair<std::vector<std::string>, std::string> coco_class_names(const DatasetSplit& entry);

// The non-blank lines of a list file, trimmed, with their 1-based numbers; a UTF-8 byte-order mark
// is dropped from the first.
std::vector<std::pair<int, std::string>> list_lines(std::istream& in);
std::string trimmed(std::string s);

// Throws yolo2::Error naming both lists when the dataset's names (from `file`) differ from the
// model's (ParseOptions::class_names, the config's data.classes or the checkpoint's).
void check_class_names(const std::vector<std::string>& dataset_names, const std::string& file,
                       const std::vector<std::string>& model_names);

// The checks every image gets (image_io's cheap checks; with skip_bad_images a full decode, the
// image then skipped and counted), then the record is added (an EmptyImage issue when it has no
// object). Throws on a bad image unless skip_bad_images.
void add_image(ImageRecord rec, const ParseOptions& options, Dataset& ds);

// Clips a box given in pixels (x1 <= x2, y1 <= y2 expected) to [0, width] x [0, height], noting a
// ClippedBox; false (a DegenerateBox noted) when nothing of it is left. `where` names the line or
// JSON path. For formats whose boxes are continuous (darknet labels, COCO), not VOC's pixel indices.
bool clip_box(double x1, double y1, double x2, double y2, const ImageRecord& rec, const std::string& where,
              const std::string& file, Object& o, std::vector<ParseIssue>& issues);

}  // namespace yolo2::data::formats
