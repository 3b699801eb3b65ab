// Classification data for `yolo2 pretrain`: torchvision's ImageFolder layout (ROOT/SPLIT/<class>/
// <image>, so ImageNet as users keep it works unchanged) and darknet's classifier augmentation
// (random_augment_image: a random scale of the shorter side, aspect change, rotation and crop, then
// a flip and the HSV distortion) and evaluation (the shorter side resized to the input, a centre
// crop: darknet's validate_classifier_single).
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "yolo2/data/loader.hpp"

namespace yolo2::data {

struct ImageFolderDataset {
  std::vector<std::string> class_names;
  std::vector<std::string> paths;  // sorted by class, then by file name
  std::vector<int> labels;         // index into class_names
  std::size_t size() const { return paths.size(); }
};

// The images of ROOT/SPLIT/<class>/ for each {root, split} (extensions as torchvision's: jpg,
// jpeg, png, ppm, bmp, pgm, tif, tiff, webp). `classes` empty: the sorted sub-folder names of the
// first split (torchvision); otherwise these names in this order, and every sub-folder must be one
// of them. `key` names the config key in errors. A missing folder, a class folder that is not
// listed and (with require_every_class) a class without images are errors.
ImageFolderDataset load_image_folder(const std::vector<DatasetSplit>& splits, const std::vector<std::string>& classes,
                                     const std::string& key, bool require_every_class);

// Images per class.
std::vector<int64_t> images_per_class(const ImageFolderDataset& dataset);

struct CropOptions {
  int min_crop = 0;  // shorter side scaled to [min_crop, max_crop] (0: the input size)
  int max_crop = 0;  // 0: twice the input size
  double aspect = 1.0;
  double angle = 0.0;  // degrees
};

// darknet's random_augment_image + flip + HSV distortion of one image to out x out (8-bit BGR).
cv::Mat augment_classify(const cv::Mat& image, int out, const CropOptions& crop, const AugmentOptions& cfg,
                         util::Rng& rng);
// The shorter side resized to `out`, then the centre out x out crop.
cv::Mat center_crop(const cv::Mat& image, int out);

// Batch `index` of a classification stream: images [B, 3, size, size] and labels [B] (the class);
// training batches are augmented (plan_batch's order, sizes and seeds), evaluation ones centre-cropped.
Batch make_classify_batch(const ImageFolderDataset& dataset, const LoaderOptions& options, const CropOptions& crop,
                          int64_t index);

}  // namespace yolo2::data
