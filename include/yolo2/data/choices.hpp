// The data pipeline's choices (config: data.eval_transform, data.augment.jitter_mode,
// data.augment.hsv, data.sample, data.cache), what a dataset entry names (data.train, data.test) and
// the augmentation's options (the config's data.augment section is this struct).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace yolo2::data {

// The form a dataset entry is in (dataset.hpp): detected from what is on disk, or named.
enum class DatasetFormat { Auto, Voc, Darknet, Coco };

// One dataset entry of data.train / data.test, e.g. {"data/VOCdevkit/VOC2007", "trainval"}: a VOC
// root and image set; a darknet obj.data / data.yaml (split: its train / valid / val key), a folder
// (images/<split>/ or <split>.txt) or an image list; a COCO folder (annotations/instances_<split>.json)
// or JSON file, its images in `images` when given.
struct DatasetSplit {
  DatasetSplit() = default;
  DatasetSplit(std::string root_, std::string split_, DatasetFormat format_ = DatasetFormat::Auto,
               std::string images_ = {})
      : root(std::move(root_)), split(std::move(split_)), format(format_), images(std::move(images_)) {}
  std::string root;
  std::string split;
  DatasetFormat format = DatasetFormat::Auto;
  std::string images;  // COCO: the image folder (default: found beside the annotations)
};

enum class EvalTransform { Letterbox, Resize };  // how an image becomes the network input for evaluation
enum class JitterMode { Crop, Letterbox };       // darknet's crop jitter, or letterbox jitter
enum class HsvMode { Darknet, AlexeyAB };        // float HSV (PJ darknet) or 8-bit OpenCV HSV (AlexeyAB)
enum class SampleMode { Shuffle, Random };       // each epoch a permutation, or draws with replacement
enum class CacheMode { None, Ram };              // decode every JPEG each time, or once (kept decoded in memory)

// Training augmentation (yolov2-reference.md §5): darknet's jitter, flip and HSV distortion.
struct AugmentOptions {
  JitterMode jitter_mode = JitterMode::Crop;
  double jitter = 0.3;
  bool flip = true;
  double hue = 0.1;
  double saturation = 1.5;
  double exposure = 1.5;
  HsvMode hsv = HsvMode::Darknet;  // colour arithmetic: darknet's float HSV, or AlexeyAB's 8-bit OpenCV HSV
  std::vector<double> letterbox_scale{0.25, 2.0};  // letterbox jitter: placed-image scale drawn from [lo, hi]
  double min_box_size = 0.001;  // boxes narrower or lower than this (fraction of the input) are dropped
  bool box_holes = false;       // a dropped box ends the image's ground truths (PJ darknet before 2018-01-16)
};

}  // namespace yolo2::data
