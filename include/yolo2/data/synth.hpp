// `yolo2 synth`: a generated detection dataset, in VOC form by default: VOCdevkit's exact layout
// (Annotations/, JPEGImages/, ImageSets/Main/) so the same code path reads it and a real
// VOCdevkit/VOC2007 folder; the content is made to exercise a detector (shapes of many sizes,
// overlaps, truncation at borders, clutter, difficult objects, long-tailed class frequencies).
// The same dataset (same pixels, same boxes) in darknet or COCO form, for the other readers:
//   darknet: images/<id>.jpg, labels/<id>.txt, <split>.txt lists, obj.names, obj.data (train =
//            trainval.txt, valid = test.txt) and an ultralytics data.yaml; no object is difficult
//            (darknet's labels cannot say it; `difficult = false` makes the VOC form match);
//   coco:    images/<id>.jpg and annotations/instances_<split>.json, a difficult object written as
//            a crowd box (iscrowd: 1), which yolo2 reads back as difficult.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "yolo2/data/voc.hpp"

namespace yolo2::data {

struct SynthOptions {
  std::string out_dir;      // becomes the VOC root: out_dir/Annotations, out_dir/JPEGImages, ...
  int train = 400;          // images in trainval (split about half/half into train and val)
  int test = 100;           // images in test
  int size = 256;           // longest image side in pixels; the other side is 75-100% of it
  uint64_t seed = 0;        // everything is a pure function of (options, seed)
  int num_classes = 8;      // 6..10 shape classes (see synth_class_names); 6..14 with `classification`
  double imbalance = 20.0;  // ratio of the most to the least frequent class (>= 1)
  int max_objects = 6;      // objects per image: 1..max_objects
  int min_object = 8;       // smallest object side in pixels (sizes are log-uniform up to half the image)
  double clutter = 1.0;     // background distractors (strokes, specks, colour blobs): 0 none, 1 default, up to 2
  int jpeg_quality = 92;
  int threads = 0;  // 0: all cores
  // out_dir must be missing or empty; with `overwrite`, a dataset synth wrote there is replaced (only
  // the files synth writes are deleted) and any other non-empty folder is still refused.
  bool overwrite = false;
  // An ImageFolder classification set instead (`yolo2 pretrain`): out_dir/train/<class>/*.jpg
  // (`train` images) and out_dir/val/<class>/*.jpg (`test` images), one shape per image, classes
  // balanced; its own random streams, so it shares no draws with a detection set of the same seed.
  bool classification = false;
  DatasetFormat format = DatasetFormat::Voc;  // voc, darknet or coco (not auto)
  bool difficult = true;  // mark tiny and mostly hidden objects difficult (false, and for darknet: none)
};

struct SynthResult {
  std::vector<ImageRecord> images;  // everything drawn (0-based boxes, as parse_voc_xml returns)
  std::vector<std::string> class_names;
  std::vector<int> objects_per_class;
  int difficult = 0, truncated = 0;
  double seconds = 0;
};

// Class names of a synthetic dataset with n classes (6 <= n <= 14), in label order: the first ten
// are the detection shapes, the classification set adds pentagon, trapezoid, chevron, semicircle.
std::vector<std::string> synth_class_names(int num_classes);

// Writes the dataset and returns what was drawn. Throws yolo2::Error on invalid options or I/O
// failure (naming the path). Existing files in out_dir are overwritten.
SynthResult write_synth(const SynthOptions& options);

}  // namespace yolo2::data
