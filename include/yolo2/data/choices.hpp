// The data pipeline's choices (config: data.eval_transform, data.augment.jitter_mode,
// data.augment.hsv, data.sample, data.cache) and what a dataset entry names (data.train, data.test).
#pragma once

#include <string>

namespace yolo2::data {

// One (VOC root, image set) pair, e.g. {"data/VOCdevkit/VOC2007", "trainval"}.
struct DatasetSplit {
  std::string root;
  std::string split;
};

enum class EvalTransform { Letterbox, Resize };  // how an image becomes the network input for evaluation
enum class JitterMode { Crop, Letterbox };       // darknet's crop jitter, or letterbox jitter
enum class HsvMode { Darknet, AlexeyAB };        // float HSV (PJ darknet) or 8-bit OpenCV HSV (AlexeyAB)
enum class SampleMode { Shuffle, Random };       // each epoch a permutation, or draws with replacement
enum class CacheMode { None, Ram };              // decode every JPEG each time, or once (kept decoded in memory)

}  // namespace yolo2::data
