// `yolo2 synth --format darknet|coco`: the generated records written in the other dataset forms
// (synth.hpp says the layouts). Each returns the files it wrote, relative to the root, for synth's
// marker (the only files `--overwrite` deletes).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "yolo2/data/dataset.hpp"

namespace yolo2::data::synth_forms {

// synth's file writing: a folder made (or a named error), a file written whole (or a named error).
void make_dir(const std::filesystem::path& dir);
void write_text(const std::filesystem::path& path, const std::string& text);

// Split names and the image indices of each, in the order of synth's splits.
struct Splits {
  std::vector<std::string> names;
  std::vector<std::vector<int>> indices;
};

// ROOT/labels/<id>.txt of one image: `class cx cy w h`, the box's edges x1 and x2 (0-based pixel
// corners, as voc_label.py's xmin - 1 and xmax - 1) giving cx = (x1 + x2) / 2W and w = (x2 - x1) / W,
// so that darknet_labels.cpp gives the very same floats back.
void write_darknet_labels(const ImageRecord& rec, const std::filesystem::path& path);

// The lists <split>.txt (image paths relative to ROOT), obj.names, obj.data and data.yaml.
std::vector<std::string> write_darknet_files(const std::filesystem::path& root, const std::vector<std::string>& names,
                                             const std::vector<ImageRecord>& images, const Splits& splits);

// ROOT/annotations/instances_<split>.json per split (categories 1..N, image ids index + 1).
std::vector<std::string> write_coco_files(const std::filesystem::path& root, const std::vector<std::string>& names,
                                          const std::vector<ImageRecord>& images, const Splits& splits);

}  // namespace yolo2::data::synth_forms
