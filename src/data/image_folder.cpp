#include "yolo2/data/image_folder.hpp"

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <set>

#include "yolo2/data/augment.hpp"
#include "yolo2/data/image_io.hpp"
#include "yolo2/error.hpp"

namespace yolo2::data {

namespace fs = std::filesystem;

namespace {

// The images yolo2 reads (data::read_image_file: JPEG, PNG, BMP); other files are not samples. An
// image in a format it does not read is an error naming it, rather than a file silently left out.
bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::set<std::string> kExt{".jpg", ".jpeg", ".png", ".bmp"};
  static const std::set<std::string> kOther{".ppm", ".pgm", ".pbm", ".tif", ".tiff", ".webp", ".gif"};
  if (kOther.count(ext) > 0)
    throw Error(p.string() + ": yolo2 reads JPEG, PNG or BMP images; convert this one (or move it out of the folder)");
  return kExt.count(ext) > 0;
}

std::vector<std::string> sorted_subfolders(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string()[0] != '.') names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> sorted_images(const fs::path& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink))
    if (e.is_regular_file() && is_image_file(e.path())) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

ImageFolderDataset load_image_folder(const std::vector<DatasetSplit>& splits, const std::vector<std::string>& classes,
                                     const std::string& key, bool require_every_class) {
  if (splits.empty()) throw Error(key + ": no image folders given (list of {root, split})");
  ImageFolderDataset ds;
  ds.class_names = classes;
  std::vector<int64_t> found;
  for (const auto& sp : splits) {
    const fs::path dir = fs::path(sp.root) / sp.split;
    if (!fs::is_directory(dir))
      throw Error(key + ": " + dir.string() + " is not a folder (pretrain reads the ImageFolder layout ROOT/SPLIT/" +
                  "<class>/<image>, e.g. " + (fs::path(sp.root) / sp.split / "n01440764" / "a.JPEG").string() + ")");
    const std::vector<std::string> sub = sorted_subfolders(dir);
    if (sub.empty()) throw Error(key + ": " + dir.string() + " holds no class folders (ROOT/SPLIT/<class>/<image>)");
    if (ds.class_names.empty()) ds.class_names = sub;
    found.resize(ds.class_names.size(), 0);
    for (const auto& name : sub) {
      const auto it = std::find(ds.class_names.begin(), ds.class_names.end(), name);
      if (it == ds.class_names.end())
        throw Error(key + ": " + (dir / name).string() + " is a class folder, but '" + name + "' is not one of the " +
                    std::to_string(ds.class_names.size()) +
                    " classes (data.classes, or the class folders of the training split)");
      const int label = static_cast<int>(it - ds.class_names.begin());
      for (auto& path : sorted_images(dir / name)) {
        ds.paths.push_back(std::move(path));
        ds.labels.push_back(label);
        ++found[static_cast<std::size_t>(label)];
      }
    }
  }
  if (require_every_class)
    for (std::size_t c = 0; c < ds.class_names.size(); ++c)
      if (found[c] == 0)
        throw Error(key + ": class '" + ds.class_names[c] + "' has no images (extensions jpg, jpeg, png, ppm, bmp, " +
                    "pgm, tif, tiff, webp)");
  if (ds.paths.empty()) throw Error(key + ": no images found");
  return ds;
}

std::vector<int64_t> images_per_class(const ImageFolderDataset& dataset) {
  std::vector<int64_t> n(dataset.class_names.size(), 0);
  for (int l : dataset.labels) ++n[static_cast<std::size_t>(l)];
  return n;
}

cv::Mat augment_classify(const cv::Mat& image, int out, const CropOptions& crop, const AugmentOptions& cfg,
                         util::Rng& rng) {
  // darknet's random_augment_args (image.c): aspect = rand_scale(aspect), the shorter side (after
  // the aspect change) scaled to rand_int(min_crop, max_crop), rotation, and a crop offset.
  const double aspect = rand_scale(rng, crop.aspect);
  const int low = crop.min_crop > 0 ? crop.min_crop : out;
  const int high = std::max(low, crop.max_crop > 0 ? crop.max_crop : 2 * out);
  const double r = static_cast<double>(rng.uniform_int(low, high));
  const double w = image.cols, h = image.rows;
  const double scale = r / std::min(h, w * aspect);
  const double rad = rng.uniform(-crop.angle, crop.angle) * M_PI / 180.0;
  const double half_dx = (w * scale / aspect - out) / 2.0, half_dy = (h * scale - out) / 2.0;
  const double dx = rng.uniform(-half_dx, half_dx), dy = rng.uniform(-half_dy, half_dy);
  // rotate_crop_image: output (x, y) samples the input at R * D * (x - out/2 + dx, y - out/2 + dy)
  // + centre, D = diag(aspect / scale, 1 / scale); outside the image is black (get_pixel_extend).
  const double c = std::cos(rad), s = std::sin(rad), ax = aspect / scale, ay = 1.0 / scale;
  const double ox = dx - out / 2.0, oy = dy - out / 2.0;
  const cv::Matx23d m(c * ax, -s * ay, c * ax * ox - s * ay * oy + w / 2.0,  //
                      s * ax, c * ay, s * ax * ox + c * ay * oy + h / 2.0);
  cv::Mat result;
  cv::warpAffine(image, result, m, cv::Size(out, out), cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_CONSTANT,
                 cv::Scalar(0, 0, 0));
  if (cfg.flip && rng.bernoulli(0.5)) cv::flip(result, result, 1);
  const double dhue = rng.uniform(-cfg.hue, cfg.hue);
  const double dsat = rand_scale(rng, cfg.saturation), dexp = rand_scale(rng, cfg.exposure);
  distort_hsv(result, dhue, dsat, dexp, cfg.hsv);
  return result;
}

cv::Mat center_crop(const cv::Mat& image, int out) {
  // darknet's resize_min (integer arithmetic), then crop_image at the centre.
  int w = image.cols, h = image.rows;
  if (w < h) {
    h = h * out / w, w = out;
  } else {
    w = w * out / h, h = out;
  }
  cv::Mat resized;
  cv::resize(image, resized, cv::Size(w, h), 0, 0, cv::INTER_LINEAR);
  return resized(cv::Rect((w - out) / 2, (h - out) / 2, out, out)).clone();
}

Batch make_classify_batch(const ImageFolderDataset& ds, const LoaderOptions& opt, const CropOptions& crop,
                          int64_t index) {
  const BatchPlan plan = plan_batch(static_cast<int>(ds.size()), opt, index);
  Batch batch;
  batch.index = index;
  batch.epoch = plan.epoch;
  batch.size = plan.size;
  const auto count = static_cast<int64_t>(plan.images.size());
  const int s = batch.size;
  batch.images = at::empty({count, 3, s, s}, at::kFloat);
  batch.labels = at::empty({count}, at::kLong);
  float* images = batch.images.data_ptr<float>();
  int64_t* labels = batch.labels.data_ptr<int64_t>();
  for (int64_t j = 0; j < count; ++j) {
    const auto k = static_cast<std::size_t>(j);
    const auto idx = static_cast<std::size_t>(plan.images[k]);
    batch.image_indices.push_back(plan.images[k]);
    const cv::Mat image = read_image_file(ds.paths[idx]);
    cv::Mat sized;
    if (opt.train) {
      util::Rng rng(plan.seeds[k]);
      sized = augment_classify(image, s, crop, opt.augment, rng);
    } else {
      sized = center_crop(image, s);
    }
    pack_image(sized, images + j * 3 * s * s);
    labels[j] = ds.labels[idx];
  }
  return batch;
}

}  // namespace yolo2::data
