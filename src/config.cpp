// The config schema: every key with its type, default, range and documentation, declared once
// in `registry()`. Loading walks the YAML tree against it, so unknown keys, wrong types and
// out-of-range values are reported with the key path and the file position.
#include "yolo2/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <type_traits>
#include <utility>

#include "config_words.hpp"
#include "yolo2/error.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2 {

const std::vector<std::string>& voc_class_names() {
  static const std::vector<std::string> kNames{
      "aeroplane",   "bicycle", "bird",  "boat",      "bottle", "bus",         "car",   "cat",  "chair", "cow",
      "diningtable", "dog",     "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"};
  return kNames;
}

const std::vector<double>& voc_anchors() {
  // yolov2-voc.cfg [region] anchors, in grid cells (yolov2-reference.md §1.2).
  static const std::vector<double> kAnchors{1.3221,  1.73145, 3.19275, 4.00944, 5.05587,
                                            8.09892, 9.47112, 4.84053, 11.2364, 10.0071};
  return kAnchors;
}

namespace {

// ---- value conversion -------------------------------------------------------------------

std::string where(const YAML::Node& node, const std::string& origin) {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null()) return origin;
  return origin + ":" + std::to_string(mark.line + 1);
}

[[noreturn]] void type_error(const std::string& path, const std::string& expected, const YAML::Node& node,
                             const std::string& origin) {
  std::string got;
  if (node.IsScalar())
    got = "'" + node.Scalar() + "'";
  else if (node.IsSequence())
    got = "a list";
  else if (node.IsMap())
    got = "a map";
  else
    got = "nothing";
  throw Error(where(node, origin) + ": config key '" + path + "' expects " + expected + ", got " + got);
}

template <class T>
struct Codec;

template <>
struct Codec<double> {
  static const char* name() { return "a number"; }
  static bool decode(const YAML::Node& n, double& out) {
    if (!n.IsScalar()) return false;
    try {
      std::size_t used = 0;
      out = std::stod(n.Scalar(), &used);
      return used == n.Scalar().size() && std::isfinite(out);
    } catch (const std::exception&) {
      return false;
    }
  }
  // The shortest text that reads back as the same double: yaml-cpp's own conversion prints 17
  // digits ("0.59999999999999998" for 0.6), which leaked into to_yaml and the key reference.
  static YAML::Node encode(double v) {
    char text[32];
    for (int precision = 1; precision <= 17; ++precision) {
      std::snprintf(text, sizeof text, "%.*g", precision, v);
      if (std::strtod(text, nullptr) == v) break;
    }
    return YAML::Node(std::string(text));
  }
};

template <class Int>
struct IntCodec {
  static const char* name() { return "an integer"; }
  static bool decode(const YAML::Node& n, Int& out) {
    if (!n.IsScalar()) return false;
    try {
      std::size_t used = 0;
      if constexpr (std::is_unsigned_v<Int>) {
        // Through stoll, seeds >= 2^63 were rejected (and such a to_yaml dump did not reload).
        // stoull would wrap "-1" to 2^64 - 1, so any sign is refused here.
        if (n.Scalar().find('-') != std::string::npos) return false;
        const unsigned long long v = std::stoull(n.Scalar(), &used);
        if (used != n.Scalar().size() || v > std::numeric_limits<Int>::max()) return false;
        out = static_cast<Int>(v);
        return true;
      }
      const long long v = std::stoll(n.Scalar(), &used);
      if (used != n.Scalar().size()) return false;
      // Out of the type's range is not an integer of this type; a key's own range is checked apart
      // (a negative batch reads "must be in [1, ...]", not "expects an integer").
      if (v < static_cast<long long>(std::numeric_limits<Int>::min()) ||
          v > static_cast<long long>(std::numeric_limits<Int>::max()))
        return false;
      out = static_cast<Int>(v);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }
  static YAML::Node encode(Int v) { return YAML::Node(v); }
};
template <>
struct Codec<int> : IntCodec<int> {};
template <>
struct Codec<int64_t> : IntCodec<int64_t> {};
template <>
struct Codec<uint64_t> : IntCodec<uint64_t> {};

template <>
struct Codec<bool> {
  static const char* name() { return "true or false"; }
  static bool decode(const YAML::Node& n, bool& out) {
    if (!n.IsScalar()) return false;
    const std::string& s = n.Scalar();
    if (s == "true" || s == "True" || s == "yes" || s == "on") return out = true, true;
    if (s == "false" || s == "False" || s == "no" || s == "off") return out = false, true;
    return false;
  }
  static YAML::Node encode(bool v) { return YAML::Node(v); }
};

template <>
struct Codec<std::string> {
  static const char* name() { return "a string"; }
  static bool decode(const YAML::Node& n, std::string& out) {
    if (!n.IsScalar() && !n.IsNull()) return false;
    out = n.IsNull() ? std::string() : n.Scalar();
    return true;
  }
  static YAML::Node encode(const std::string& v) { return YAML::Node(v); }
};

template <class T>
struct Codec<std::vector<T>> {
  static std::string list_name() { return std::string("a list, each ") + Codec<T>::name(); }
  static const char* name() {
    static const std::string n = list_name();
    return n.c_str();
  }
  static bool decode(const YAML::Node& n, std::vector<T>& out) {
    if (n.IsNull()) return out.clear(), true;
    if (!n.IsSequence()) return false;
    std::vector<T> v(n.size());
    for (std::size_t i = 0; i < n.size(); ++i)
      if (!Codec<T>::decode(n[i], v[i])) return false;
    out = std::move(v);
    return true;
  }
  static YAML::Node encode(const std::vector<T>& v) {
    YAML::Node n(YAML::NodeType::Sequence);
    for (const auto& x : v) n.push_back(Codec<T>::encode(x));
    n.SetStyle(YAML::EmitterStyle::Flow);
    return n;
  }
};

template <>
struct Codec<AlphaSpec> {
  static const char* name() { return "a number, a list of numbers (one per class) or 'auto'"; }
  static bool decode(const YAML::Node& n, AlphaSpec& out) {
    if (n.IsScalar() && n.Scalar() == "auto") {
      out = AlphaSpec{AlphaSpec::Kind::Auto, 1.0, {}};
      return true;
    }
    double s = 0;
    if (Codec<double>::decode(n, s)) {
      out = AlphaSpec{AlphaSpec::Kind::Scalar, s, {}};
      return true;
    }
    std::vector<double> v;
    if (n.IsSequence() && Codec<std::vector<double>>::decode(n, v)) {
      out = AlphaSpec{AlphaSpec::Kind::PerClass, 1.0, std::move(v)};
      return true;
    }
    return false;
  }
  static YAML::Node encode(const AlphaSpec& v) {
    switch (v.kind) {
      case AlphaSpec::Kind::Auto:
        return YAML::Node("auto");
      case AlphaSpec::Kind::PerClass:
        return Codec<std::vector<double>>::encode(v.per_class);
      case AlphaSpec::Kind::Scalar:
        break;
    }
    return Codec<double>::encode(v.scalar);
  }
};

// Enums are spelled as lower-case words in YAML.
template <class E>
struct EnumNames;
template <>
struct EnumNames<EvalTransform> {
  static std::vector<std::pair<EvalTransform, const char*>> get() {
    return {{EvalTransform::Letterbox, "letterbox"}, {EvalTransform::Resize, "resize"}};
  }
};
template <>
struct EnumNames<ClassLoss> {
  static std::vector<std::pair<ClassLoss, const char*>> get() {
    return {{ClassLoss::CrossEntropy, "ce"}, {ClassLoss::Focal, "focal"}, {ClassLoss::SigmoidFocal, "sigmoid_focal"}};
  }
};
template <>
struct EnumNames<LrPolicy> {
  static std::vector<std::pair<LrPolicy, const char*>> get() {
    return {{LrPolicy::Steps, "steps"},
            {LrPolicy::Cosine, "cosine"},
            {LrPolicy::Constant, "constant"},
            {LrPolicy::Poly, "poly"}};
  }
};
template <>
struct EnumNames<GammaScheduleType> {
  static std::vector<std::pair<GammaScheduleType, const char*>> get() {
    return {{GammaScheduleType::Constant, "constant"},
            {GammaScheduleType::Step, "step"},
            {GammaScheduleType::Linear, "linear"},
            {GammaScheduleType::Cosine, "cosine"}};
  }
};
template <>
struct EnumNames<JitterMode> {
  static std::vector<std::pair<JitterMode, const char*>> get() {
    return {{JitterMode::Crop, "crop"}, {JitterMode::Letterbox, "letterbox"}};
  }
};

template <>
struct EnumNames<HsvMode> {
  static std::vector<std::pair<HsvMode, const char*>> get() {
    return {{HsvMode::Darknet, "darknet"}, {HsvMode::AlexeyAB, "alexeyab"}};
  }
};
template <>
struct EnumNames<SampleMode> {
  static std::vector<std::pair<SampleMode, const char*>> get() {
    return {{SampleMode::Shuffle, "shuffle"}, {SampleMode::Random, "random"}};
  }
};

template <>
struct EnumNames<CacheMode> {
  static std::vector<std::pair<CacheMode, const char*>> get() {
    return {{CacheMode::None, "none"}, {CacheMode::Ram, "ram"}};
  }
};

template <>
struct EnumNames<Head> {
  static std::vector<std::pair<Head, const char*>> get() {
    return {{Head::Region, "region"}, {Head::Classifier, "classifier"}};
  }
};

template <>
struct EnumNames<OptimizerKind> {
  static std::vector<std::pair<OptimizerKind, const char*>> get() {
    return {{OptimizerKind::Sgd, "sgd"}, {OptimizerKind::Adam, "adam"}};
  }
};

template <>
struct EnumNames<Precision> {
  static std::vector<std::pair<Precision, const char*>> get() {
    return {{Precision::Fp32, "fp32"}, {Precision::Tf32, "tf32"}, {Precision::Bf16, "bf16"}, {Precision::Fp16, "fp16"}};
  }
};

// The word of `v`; "?" for a value without one.
template <class E>
const char* word_of(E v) {
  for (const auto& [value, word] : EnumNames<E>::get())
    if (value == v) return word;
  return "?";
}

template <class E>
struct EnumCodec {
  static const char* name() {
    static const std::string n = [] {
      std::string s = "one of";
      for (const auto& [value, word] : EnumNames<E>::get()) s += std::string(" ") + word;
      return s;
    }();
    return n.c_str();
  }
  static bool decode(const YAML::Node& n, E& out) {
    if (!n.IsScalar()) return false;
    for (const auto& [value, word] : EnumNames<E>::get())
      if (n.Scalar() == word) return out = value, true;
    return false;
  }
  static YAML::Node encode(E v) { return YAML::Node(std::string(word_of(v))); }
};
template <>
struct Codec<EvalTransform> : EnumCodec<EvalTransform> {};
template <>
struct Codec<ClassLoss> : EnumCodec<ClassLoss> {};
template <>
struct Codec<LrPolicy> : EnumCodec<LrPolicy> {};
template <>
struct Codec<GammaScheduleType> : EnumCodec<GammaScheduleType> {};
template <>
struct Codec<JitterMode> : EnumCodec<JitterMode> {};
template <>
struct Codec<OptimizerKind> : EnumCodec<OptimizerKind> {};
template <>
struct Codec<Precision> : EnumCodec<Precision> {};
template <>
struct Codec<HsvMode> : EnumCodec<HsvMode> {};
template <>
struct Codec<SampleMode> : EnumCodec<SampleMode> {};
template <>
struct Codec<CacheMode> : EnumCodec<CacheMode> {};
template <>
struct Codec<Head> : EnumCodec<Head> {};

template <>
struct EnumNames<DatasetFormat> {
  static std::vector<std::pair<DatasetFormat, const char*>> get() {
    return {{DatasetFormat::Auto, "auto"},
            {DatasetFormat::Voc, "voc"},
            {DatasetFormat::Darknet, "darknet"},
            {DatasetFormat::Coco, "coco"}};
  }
};

// {root: PATH, split: NAME} plus, optionally, format: auto|voc|darknet|coco and images: DIR (COCO).
// The split may be left out where the root names a file (a darknet list, a COCO JSON).
template <>
struct Codec<DatasetSplit> {
  static const char* name() {
    return "a {root: PATH, split: NAME} map (optional: format: auto|voc|darknet|coco, images: DIR)";
  }
  static bool decode(const YAML::Node& n, DatasetSplit& out) {
    if (!n.IsMap() || !n["root"] || !n["root"].IsScalar()) return false;
    for (const auto& kv : n) {
      const std::string key = kv.first.Scalar();
      if (key != "root" && key != "split" && key != "format" && key != "images") return false;
      if (!kv.second.IsScalar()) return false;
    }
    out = DatasetSplit{};
    out.root = n["root"].Scalar();
    if (n["split"]) out.split = n["split"].Scalar();
    if (n["images"]) out.images = n["images"].Scalar();
    if (n["format"] && !EnumCodec<DatasetFormat>::decode(n["format"], out.format)) return false;
    return !out.root.empty() && (!n["split"] || !out.split.empty());
  }
  static YAML::Node encode(const DatasetSplit& v) {
    YAML::Node n(YAML::NodeType::Map);
    n["root"] = v.root;
    if (!v.split.empty()) n["split"] = v.split;
    if (v.format != DatasetFormat::Auto) n["format"] = word_of(v.format);
    if (!v.images.empty()) n["images"] = v.images;
    n.SetStyle(YAML::EmitterStyle::Flow);
    return n;
  }
};

// ---- the registry ----------------------------------------------------------------------

struct Field {
  ConfigKeyInfo info;
  std::function<void(Config&, const YAML::Node&, const std::string& origin)> set;
  std::function<YAML::Node(const Config&)> get;
};

// A range or membership check on a decoded value; returns an error text or nothing.
template <class T>
using Check = std::function<std::optional<std::string>(const T&)>;

template <class T>
Check<T> any() {
  return [](const T&) -> std::optional<std::string> { return std::nullopt; };
}
template <class T>
Check<T> in_range(double lo, double hi) {
  return [lo, hi](const T& v) -> std::optional<std::string> {
    if (static_cast<double>(v) < lo || static_cast<double>(v) > hi) {
      std::ostringstream os;
      os << "must be in [" << lo << ", " << hi << "], got " << v;
      return os.str();
    }
    return std::nullopt;
  };
}
template <class T>
Check<std::vector<T>> each_in_range(double lo, double hi) {
  return [lo, hi](const std::vector<T>& v) -> std::optional<std::string> {
    for (std::size_t i = 0; i < v.size(); ++i)
      if (static_cast<double>(v[i]) < lo || static_cast<double>(v[i]) > hi) {
        std::ostringstream os;
        os << "element " << i << " must be in [" << lo << ", " << hi << "], got " << v[i];
        return os.str();
      }
    return std::nullopt;
  };
}

std::string node_text(const YAML::Node& n) {
  YAML::Emitter e;
  e << YAML::Flow << n;
  return e.c_str();
}

template <class T, class Access>
Field field(std::string path, Access access, std::string doc, Check<T> check = any<T>()) {
  Field f;
  f.info.path = path;
  f.info.type = Codec<T>::name();
  f.info.doc = std::move(doc);
  f.set = [path, access, check](Config& c, const YAML::Node& n, const std::string& origin) {
    T value{};
    if (!Codec<T>::decode(n, value)) type_error(path, Codec<T>::name(), n, origin);
    if (auto problem = check(value)) throw Error(where(n, origin) + ": config key '" + path + "' " + *problem);
    access(c) = std::move(value);
  };
  f.get = [access](const Config& c) { return Codec<T>::encode(access(c)); };
  return f;
}

constexpr double kInf = std::numeric_limits<double>::infinity();

#define YOLO2_KEY(T, PATH, ...) \
  field<T>(                     \
      #PATH, [](auto& c) -> auto& { return c.PATH; }, __VA_ARGS__)

// One function per config section, each appending its keys to the registry in the order
// that config_keys(), to_yaml and the README's key reference show them.

void add_augment_keys(std::vector<Field>& f) {
  f.insert(
      f.end(),
      {
          YOLO2_KEY(JitterMode, data.augment.jitter_mode,
                    "Geometric jitter variant: crop (PJ darknet's YOLOv2 release 2016-17 and AlexeyAB: "
                    "random crop with border replication, resized to the input) or letterbox (PJ darknet "
                    "2017-18: random aspect, scale (data.augment.letterbox_scale) and placement on a gray "
                    "canvas)."),
          YOLO2_KEY(double, data.augment.jitter, "Jitter strength (darknet yolov2-voc: 0.3).",
                    in_range<double>(0, 0.49)),
          YOLO2_KEY(bool, data.augment.flip, "Random horizontal flip with probability 0.5."),
          YOLO2_KEY(double, data.augment.hue, "Hue shift drawn from [-hue, hue] (H in [0, 1]).",
                    in_range<double>(0, 0.5)),
          YOLO2_KEY(double, data.augment.saturation, "Saturation scale drawn from [1/s, s].", in_range<double>(1, 10)),
          YOLO2_KEY(double, data.augment.exposure, "Exposure (value) scale drawn from [1/e, e].",
                    in_range<double>(1, 10)),
          YOLO2_KEY(HsvMode, data.augment.hsv,
                    "Colour arithmetic: darknet (PJ darknet's distort_image: float HSV, S and V scaled "
                    "unclamped, hue wrapped, RGB clamped at the end) or alexeyab (AlexeyAB's OpenCV path: "
                    "8-bit HSV, H 0-179, S and V saturate at 255, hue shift saturates instead of wrapping "
                    "below 0)."),
          YOLO2_KEY(std::vector<double>, data.augment.letterbox_scale,
                    "Letterbox jitter: [lo, hi] range of the placed image's scale (PJ darknet 2017-18: "
                    "[0.25, 2]; [1, 1] is PJ darknet since August 2018).",
                    each_in_range<double>(0.01, 10)),
          YOLO2_KEY(double, data.augment.min_box_size,
                    "Boxes narrower or lower than this fraction of the input after augmentation are "
                    "dropped (PJ darknet since 2017: 0.001; the YOLOv2 release: 0.01; AlexeyAB today drops boxes "
                    "under 1 px of the network input, 1/416 = 0.0024 at 416).",
                    in_range<double>(0, 0.5)),
          YOLO2_KEY(bool, data.augment.box_holes,
                    "A box dropped after augmentation also drops every later box of the image (PJ "
                    "darknet before 2018-01-16 left a zero hole that ended its region loss's box loop; "
                    "default false: every surviving box is used, as PJ darknet since and AlexeyAB)."),
      });
}

// data.augment sits between the dataset keys and the loader keys.
void add_data_keys(std::vector<Field>& f) {
  f.insert(
      f.end(),
      {
          YOLO2_KEY(std::vector<std::string>, data.classes,
                    "Class names in label order (default: the 20 VOC classes)."),
          YOLO2_KEY(std::vector<DatasetSplit>, data.train,
                    "Training sets: list of {root, split} entries, each in its own form (format: auto detects it): "
                    "a VOC folder (Annotations/, JPEGImages/, ImageSets/Main/<split>.txt); darknet labels (an "
                    "obj.data or ultralytics data.yaml whose <split> key lists the images, a folder with "
                    "images/<split>/ or <split>.txt, or an image list .txt; labels/*.txt beside images/); COCO "
                    "JSON (a folder with annotations/instances_<split>.json, or the .json itself; images: DIR)."),
          YOLO2_KEY(std::vector<DatasetSplit>, data.test, "Test sets, same form as data.train."),
          YOLO2_KEY(bool, data.train_difficult,
                    "Train on objects marked difficult (darknet: false). Evaluation always keeps them."),
          YOLO2_KEY(bool, data.skip_unknown_classes,
                    "Skip (and count) objects whose class is not in data.classes instead of failing."),
          YOLO2_KEY(bool, data.skip_bad_images,
                    "Skip (and name) unusable images instead of failing: empty, truncated, impossible sizes and, "
                    "since with this on every image is decoded once when the data is loaded, damaged JPEG data "
                    "(yolo2 stats --check-images lists them all)."),
          YOLO2_KEY(int, data.input_size, "Network input size in pixels (multiple of 32).", in_range<int>(32, 4096)),
          YOLO2_KEY(std::vector<int>, data.multiscale_sizes,
                    "Multi-scale training sizes (multiples of 32); empty: train at data.input_size.",
                    each_in_range<int>(32, 4096)),
          YOLO2_KEY(int, data.multiscale_every, "Iterations between input-size changes.", in_range<int>(1, 1e9)),
          YOLO2_KEY(int, data.multiscale_final, "The last N iterations train at the largest size (darknet: 200).",
                    in_range<int>(0, 1e9)),
          YOLO2_KEY(EvalTransform, data.eval_transform,
                    "Evaluation resize: resize (plain, as darknet's YOLOv2 release; pairs with crop "
                    "jitter) or letterbox (aspect kept, gray padding; darknet since 2017, pairs with "
                    "letterbox jitter)."),
      });
  add_augment_keys(f);
  f.insert(f.end(),
           {
               YOLO2_KEY(int, data.workers,
                         "Loader worker threads (0: load in the training thread; -1: one per core of this "
                         "process's share, less one).",
                         in_range<int>(-1, 256)),
               YOLO2_KEY(int, data.prefetch, "Batches prepared ahead of the consumer.", in_range<int>(1, 1024)),
               YOLO2_KEY(int, data.max_boxes,
                         "Ground truths kept per image (darknet: 30); extra boxes are dropped at random.",
                         in_range<int>(1, 10000)),
               YOLO2_KEY(SampleMode, data.sample,
                         "Training image order: shuffle (each epoch a permutation of the training set) or "
                         "random (each image drawn with replacement, as darknet's get_random_paths)."),
               YOLO2_KEY(CacheMode, data.cache,
                         "none (decode each JPEG every time it is used) or ram (decode each image once and keep "
                         "it decoded in memory: VOC07+12 trainval is about 9 GB; the loader then only warps, "
                         "distorts and packs)."),
           });
}

void add_model_keys(std::vector<Field>& f) {
  f.insert(f.end(),
           {
               YOLO2_KEY(Head, model.head,
                         "The network: region (the YOLOv2 detector, `yolo2 train`) or classifier (Darknet19: "
                         "the detector's first 23 layers, a 1x1 convolution to the classes, global average "
                         "pooling and softmax; `yolo2 pretrain`)."),
               YOLO2_KEY(double, model.width, "Channel multiplier for small experiments (channels scaled, at least 8).",
                         in_range<double>(0.01, 4)),
               YOLO2_KEY(std::vector<double>, model.anchors,
                         "Anchor (w, h) pairs in grid cells (default: darknet's yolov2-voc anchors).",
                         each_in_range<double>(1e-3, 1e3)),
               YOLO2_KEY(double, model.bn_momentum,
                         "Batch-norm running-statistics momentum (darknet: 0.01). Short runs need more "
                         "(0.1), or the running statistics lag the weights and evaluation suffers.",
                         in_range<double>(0.0001, 1)),
               YOLO2_KEY(double, model.objectness_prior,
                         "When > 0, the objectness biases start at -log((1 - p) / p) so that sigmoid(t_o) = p "
                         "everywhere (RetinaNet's prior; darknet: 0, a zero bias). Avoids the first "
                         "iterations' no-object gradient driving every objectness into saturation when "
                         "the burn-in is short.",
                         in_range<double>(0, 0.5)),
           });
}

void add_loss_keys(std::vector<Field>& f) {
  f.insert(
      f.end(),
      {
          YOLO2_KEY(ClassLoss, loss.classification,
                    "Class term of the region loss: ce (darknet), focal (softmax focal) or "
                    "sigmoid_focal (RetinaNet-style, one-vs-all)."),
          YOLO2_KEY(double, loss.focal.gamma, "Focal gamma when loss.focal.gamma_schedule.type is constant.",
                    in_range<double>(0, 20)),
          YOLO2_KEY(AlphaSpec, loss.focal.alpha,
                    "Focal alpha: a number, one number per class, or auto (inverse class frequency of "
                    "the training set, normalised to mean 1)."),
          YOLO2_KEY(double, loss.focal.sigmoid_alpha,
                    "sigmoid_focal only: torchvision's weight of the positive class (1 - it for the "
                    "negatives); negative disables it (every class term row holds one positive).",
                    in_range<double>(-1, 1)),
          YOLO2_KEY(GammaScheduleType, loss.focal.gamma_schedule.type,
                    "Gamma schedule ('soft gamma'): constant, step, linear or cosine."),
          YOLO2_KEY(double, loss.focal.gamma_schedule.start, "Ramp start gamma (linear, cosine).",
                    in_range<double>(0, 20)),
          YOLO2_KEY(double, loss.focal.gamma_schedule.end, "Ramp end gamma (linear, cosine).", in_range<double>(0, 20)),
          YOLO2_KEY(double, loss.focal.gamma_schedule.span_begin, "Fraction of training where the ramp starts.",
                    in_range<double>(0, 1)),
          YOLO2_KEY(double, loss.focal.gamma_schedule.span_end, "Fraction of training where the ramp ends.",
                    in_range<double>(0, 1)),
          YOLO2_KEY(std::vector<double>, loss.focal.gamma_schedule.milestones,
                    "Step schedule: increasing fractions of training.", each_in_range<double>(0, 1)),
          YOLO2_KEY(std::vector<double>, loss.focal.gamma_schedule.values,
                    "Step schedule: gamma before the first milestone, then after each (one more "
                    "value than milestones).",
                    each_in_range<double>(0, 20)),
          YOLO2_KEY(double, loss.object_scale, "Objectness weight at responsible anchors.", in_range<double>(0, kInf)),
          YOLO2_KEY(double, loss.noobject_scale, "Objectness weight at background anchors.", in_range<double>(0, kInf)),
          YOLO2_KEY(double, loss.class_scale, "Class-term weight.", in_range<double>(0, kInf)),
          YOLO2_KEY(double, loss.coord_scale, "Box-term weight.", in_range<double>(0, kInf)),
          YOLO2_KEY(double, loss.thresh,
                    "Predictions whose best IoU with a ground truth exceeds this get no no-object "
                    "penalty.",
                    in_range<double>(0, 1)),
          YOLO2_KEY(bool, loss.rescore, "Objectness target = IoU of the prediction (else 1)."),
          YOLO2_KEY(bool, loss.small_box_weight, "Box weight coord_scale * (2 - w*h) (else coord_scale)."),
          YOLO2_KEY(int64_t, loss.warmup_images, "Pull every prediction toward its anchor for the first N images seen.",
                    in_range<int64_t>(0, 9e18)),
          YOLO2_KEY(double, loss.warmup_scale, "Weight of that pull (darknet: 0.01).", in_range<double>(0, kInf)),
      });
}

void add_train_keys(std::vector<Field>& f) {
  f.insert(
      f.end(),
      {
          YOLO2_KEY(OptimizerKind, train.optimizer,
                    "sgd (darknet: momentum SGD, decay on convolution weights) or adam (train.momentum "
                    "is beta1; converges faster from scratch on small CPU runs)."),
          YOLO2_KEY(int, train.batch, "Images per optimizer step (darknet batch).", in_range<int>(1, 1 << 20)),
          YOLO2_KEY(int, train.subdivisions,
                    "Forward passes per step (gradient accumulation); batch / subdivisions images each.",
                    in_range<int>(1, 1 << 20)),
          YOLO2_KEY(double, train.lr, "Base learning rate.", in_range<double>(0, 10)),
          YOLO2_KEY(double, train.momentum, "SGD momentum.", in_range<double>(0, 0.9999)),
          YOLO2_KEY(double, train.decay, "Weight decay, on convolution weights only (darknet).",
                    in_range<double>(0, 1)),
          YOLO2_KEY(int, train.burn_in, "Warm-up: update k (counted from 1, as darknet) gets lr * (k / burn_in)^power.",
                    in_range<int>(0, 1 << 30)),
          YOLO2_KEY(double, train.burn_in_power, "Warm-up exponent (darknet: 4).", in_range<double>(0, 100)),
          YOLO2_KEY(LrPolicy, train.policy,
                    "Learning-rate policy after burn-in: steps, cosine, constant or poly (darknet's classifiers)."),
          YOLO2_KEY(double, train.power, "poly: lr * (1 - update / max_batches)^power (darknet19.cfg: 4).",
                    in_range<double>(0, 100)),
          YOLO2_KEY(std::vector<int64_t>, train.steps,
                    "Updates (counted from 1, as darknet) from which the lr is multiplied (steps)."),
          YOLO2_KEY(std::vector<double>, train.scales, "Multipliers applied at train.steps.",
                    each_in_range<double>(0, 1e3)),
          YOLO2_KEY(int64_t, train.max_batches, "Training length in iterations (optimizer steps).",
                    in_range<int64_t>(1, 9e18)),
          YOLO2_KEY(int, train.epochs, "When > 0, training length in epochs (overrides train.max_batches).",
                    in_range<int>(0, 1 << 30)),
          YOLO2_KEY(std::string, train.init_weights,
                    "Initial weights: a darknet .weights file (full or prefix such as "
                    "darknet19_448.conv.23) or a yolo2 checkpoint."),
          YOLO2_KEY(std::string, train.output, "Run folder (default: runs/<train.name>)."),
          YOLO2_KEY(std::string, train.name, "Run name."),
          YOLO2_KEY(int, train.checkpoint_every, "Iterations between last.ckpt saves.", in_range<int>(1, 1 << 30)),
          YOLO2_KEY(double, train.checkpoint_minutes,
                    "Also save last.ckpt when this many minutes have passed since the last save (0: off); the "
                    "file is written on a background thread while training goes on.",
                    in_range<double>(0, 1e6)),
          YOLO2_KEY(int, train.log_every, "Iterations between progress lines.", in_range<int>(1, 1 << 30)),
          YOLO2_KEY(bool, train.tensorboard,
                    "Write TensorBoard event files in the run folder (events.out.tfevents.*.yolo2): every "
                    "metrics.csv column, the evaluation scores and the loss, mAP and PR plots; `tensorboard "
                    "--logdir runs` shows them."),
          YOLO2_KEY(bool, train.skip_nonfinite,
                    "Skip a batch whose loss is NaN or infinite instead of stopping the run."),
          YOLO2_KEY(bool, train.freeze_bn,
                    "Batch norm in evaluation mode with fixed gamma/beta (fine-tuning with small batches; "
                    "mmdetection's norm_eval)."),
      });
}

void add_eval_keys(std::vector<Field>& f) {
  f.insert(f.end(),
           {
               YOLO2_KEY(std::string, eval.metric,
                         "AP metric: voc07 (11-point, VOC2007 test), voc12 (area, VOC2010+) or coco (COCO's AP at IoU "
                         ".50:.95 with AP50, AP75, APs/m/l and AR, as pycocotools' COCOeval).",
                         Check<std::string>([](const std::string& v) -> std::optional<std::string> {
                           if (v == "voc07" || v == "voc12" || v == "coco") return std::nullopt;
                           return "must be voc07, voc12 or coco, got '" + v + "'";
                         })),
               YOLO2_KEY(double, eval.iou, "IoU for a true positive.", in_range<double>(0.01, 1)),
               YOLO2_KEY(bool, eval.strict_iou,
                         "A match needs IoU > eval.iou (py-faster-rcnn's voc_eval.py) instead of >= (the VOC "
                         "devkit's VOCevaldet.m)."),
               YOLO2_KEY(double, eval.conf_thresh, "Score threshold for mAP (darknet: 0.005).", in_range<double>(0, 1)),
               YOLO2_KEY(double, eval.detect_thresh, "Score threshold for `yolo2 detect`.", in_range<double>(0, 1)),
               YOLO2_KEY(double, eval.nms, "Per-class NMS IoU threshold.", in_range<double>(0, 1)),
               YOLO2_KEY(int, eval.max_detections, "Detections kept per image.", in_range<int>(1, 100000)),
               YOLO2_KEY(int, eval.every, "Iterations between evaluations during training (0: only at the end).",
                         in_range<int>(0, 1 << 30)),
               YOLO2_KEY(int, eval.batch, "Images per forward pass in evaluation.", in_range<int>(1, 4096)),
           });
}

void add_classify_keys(std::vector<Field>& f) {
  f.insert(
      f.end(),
      {
          YOLO2_KEY(int, classify.min_crop,
                    "pretrain: the image's shorter side is scaled to a size drawn from [min_crop, max_crop] "
                    "before a random crop of the input size (darknet's random_augment_image; 0: the input size).",
                    in_range<int>(0, 8192)),
          YOLO2_KEY(int, classify.max_crop,
                    "pretrain: see classify.min_crop (0: twice the input size, darknet's default).",
                    in_range<int>(0, 8192)),
          YOLO2_KEY(double, classify.aspect,
                    "pretrain: aspect-ratio change drawn from [1/aspect, aspect] (darknet19.cfg's aspect=.75 "
                    "is 1.333 here).",
                    in_range<double>(1, 10)),
          YOLO2_KEY(double, classify.angle, "pretrain: rotation drawn from [-angle, angle] degrees (darknet19.cfg: 7).",
                    in_range<double>(0, 180)),
          YOLO2_KEY(int, classify.finetune_size,
                    "pretrain: input size of the fine-tune stage that follows the main one (darknet19_448.cfg: 448).",
                    in_range<int>(0, 4096)),
          YOLO2_KEY(int64_t, classify.finetune_batches,
                    "pretrain: iterations of the fine-tune stage (0: none). The run lasts train.max_batches + "
                    "classify.finetune_batches iterations.",
                    in_range<int64_t>(0, 1e15)),
          YOLO2_KEY(double, classify.finetune_lr,
                    "pretrain: learning rate of the fine-tune stage (poly with train.power, no burn-in; "
                    "darknet19_448.cfg: 0.001).",
                    in_range<double>(0, 10)),
          YOLO2_KEY(int, classify.finetune_min_crop,
                    "pretrain: classify.min_crop of the fine-tune stage (0: classify.finetune_size; "
                    "darknet19_448.cfg: 448).",
                    in_range<int>(0, 8192)),
          YOLO2_KEY(int, classify.finetune_max_crop,
                    "pretrain: classify.max_crop of the fine-tune stage (0: twice classify.finetune_size; "
                    "darknet19_448.cfg: 512).",
                    in_range<int>(0, 8192)),
          YOLO2_KEY(int, classify.prefix_layers,
                    "pretrain: the detector prefix written at the end is RUN/backbone.conv.<N> with the first N "
                    "layers (darknet19_448.conv.23: 23), for train.init_weights.",
                    in_range<int>(1, 23)),
      });
}

void add_runtime_keys(std::vector<Field>& f) {
  f.insert(f.end(), {
                        YOLO2_KEY(int, runtime.threads, "Intra-op threads (0: all cores).", in_range<int>(0, 1024)),
                        YOLO2_KEY(uint64_t, runtime.seed, "Seed of every random choice."),
                        YOLO2_KEY(bool, runtime.channels_last,
                                  "Train in channels-last (NHWC) memory format, oneDNN's faster layout on CPU "
                                  "(yolo2 bench --both-layouts measures both). Results are the same up to rounding."),
                        YOLO2_KEY(Precision, runtime.precision,
                                  "Training arithmetic: fp32 (TF32 off), tf32 (CUDA: TF32 in matmul and cuDNN), bf16 "
                                  "(autocast of the network, CUDA or a CPU with bf16 through oneDNN) or fp16 (CUDA: "
                                  "autocast with dynamic loss scaling). Weights, optimizer and loss stay fp32."),
                        YOLO2_KEY(std::string, runtime.device, "auto, cpu, cuda or cuda:N.",
                                  Check<std::string>([](const std::string& v) -> std::optional<std::string> {
                                    if (v == "auto" || v == "cpu" || v == "cuda") return std::nullopt;
                                    if (v.rfind("cuda:", 0) == 0 && v.size() > 5 &&
                                        std::all_of(v.begin() + 5, v.end(), [](char ch) { return std::isdigit(ch); }))
                                      return std::nullopt;
                                    return "must be auto, cpu, cuda or cuda:N, got '" + v + "'";
                                  })),
                    });
}

void add_distributed_keys(std::vector<Field>& f) {
  f.insert(f.end(),
           {
               YOLO2_KEY(std::string, distributed.backend,
                         "c10d backend: auto (nccl on CUDA when LibTorch has it, else gloo), gloo or nccl.",
                         Check<std::string>([](const std::string& v) -> std::optional<std::string> {
                           if (v == "auto" || v == "gloo" || v == "nccl") return std::nullopt;
                           return "must be auto, gloo or nccl, got '" + v + "'";
                         })),
               YOLO2_KEY(double, distributed.timeout,
                         "Seconds a collective waits for a peer; a rank that died or hangs ends the job after it.",
                         in_range<double>(1, 86400)),
               YOLO2_KEY(bool, distributed.sync_bn,
                         "Synchronized batch norm: statistics over the global batch (default: per rank)."),
               YOLO2_KEY(double, distributed.bucket_mb, "Gradient all-reduce bucket size in MiB (PyTorch DDP: 25).",
                         in_range<double>(0.01, 4096)),
           });
}

const std::vector<Field>& registry() {
  static const std::vector<Field> fields = [] {
    std::vector<Field> f;
    add_data_keys(f);
    add_model_keys(f);
    add_loss_keys(f);
    add_train_keys(f);
    add_eval_keys(f);
    add_classify_keys(f);
    add_runtime_keys(f);
    add_distributed_keys(f);
    const Config defaults = default_config();
    for (auto& x : f) x.info.default_value = node_text(x.get(defaults));
    return f;
  }();
  return fields;
}

#undef YOLO2_KEY

const Field* find_field(const std::string& path) {
  for (const auto& f : registry())
    if (f.info.path == path) return &f;
  return nullptr;
}

bool is_section(const std::string& path) {
  const std::string prefix = path + ".";
  for (const auto& f : registry())
    if (f.info.path.compare(0, prefix.size(), prefix) == 0) return true;
  return false;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string suggestion(const std::string& path) {
  std::string best;
  std::size_t best_d = std::numeric_limits<std::size_t>::max();
  std::set<std::string> candidates;
  for (const auto& f : registry()) {
    candidates.insert(f.info.path);
    // Sections are candidates too ("trian" -> "train").
    for (std::size_t dot = f.info.path.find('.'); dot != std::string::npos; dot = f.info.path.find('.', dot + 1))
      candidates.insert(f.info.path.substr(0, dot));
  }
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(path, c);
    if (d < best_d) best_d = d, best = c;
  }
  if (best_d <= std::max<std::size_t>(3, path.size() / 3)) return " (did you mean '" + best + "'?)";
  return "";
}

[[noreturn]] void unknown_key(const std::string& path, const YAML::Node& node, const std::string& origin) {
  throw Error(where(node, origin) + ": unknown config key '" + path + "'" + suggestion(path));
}

void apply_tree(Config& c, const YAML::Node& node, const std::string& prefix, const std::string& origin) {
  std::set<std::string> seen;  // yaml-cpp keeps duplicate keys (the first wins a lookup): refused here
  for (const auto& kv : node) {
    // A YAML complex key ("? [a, b]" or a map) is not a name (found by fuzzing: it escaped as
    // yaml-cpp's conversion error).
    if (!kv.first.IsScalar())
      throw Error(where(kv.first, origin) + ": a config key must be a plain name, not a " +
                  (kv.first.IsSequence() ? "list"
                   : kv.first.IsMap()    ? "map"
                                         : "null"));
    const std::string key = kv.first.as<std::string>();
    if (!seen.insert(key).second)
      throw Error(where(kv.first, origin) + ": config key '" + (prefix.empty() ? key : prefix + "." + key) +
                  "' is given twice in the same map");
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    if (prefix.empty() && key == "base") continue;  // handled by the loader
    if (const Field* f = find_field(path)) {
      f->set(c, kv.second, origin);
    } else if (is_section(path)) {
      if (kv.second.IsNull()) continue;
      if (!kv.second.IsMap())
        throw Error(where(kv.second, origin) + ": config key '" + path + "' is a section and expects a map");
      apply_tree(c, kv.second, path, origin);
    } else {
      unknown_key(path, kv.first, origin);
    }
  }
}

YAML::Node load_yaml_file(const std::string& path) {
  std::error_code ec;  // a status that cannot be read (a symlink loop, ...) is named by read_file below
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (status.type() == std::filesystem::file_type::not_found) throw Error(path + ": config file not found");
  if (std::filesystem::is_directory(status)) throw Error(path + ": is a folder, not a config file");
  const std::string text = util::read_file(path);  // an error names the file and the system's reason
  try {
    // Every document of the file: a second one (after `---`) would otherwise be ignored silently.
    const std::vector<YAML::Node> docs = YAML::LoadAll(text);
    const auto second = std::find_if(docs.begin() + (docs.empty() ? 0 : 1), docs.end(),
                                     [](const YAML::Node& d) { return !d.IsNull(); });
    if (second != docs.end())
      throw Error(path + ":" + std::to_string(second->Mark().line + 1) +
                  ": a second YAML document (after '---'): a config is one document; merge them, or use 'base:' to "
                  "build on another file");
    return docs.empty() ? YAML::Node() : docs.front();
  } catch (const YAML::Exception& e) {
    throw Error(path + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
}

void apply_file(Config& c, const std::string& path, int depth) {
  if (depth > 8) throw Error(path + ": 'base:' includes nest deeper than 8 (a cycle?)");
  const YAML::Node root = load_yaml_file(path);
  if (root.IsNull()) return;
  if (!root.IsMap()) throw Error(path + ": a config file must be a YAML map of sections");
  if (const YAML::Node base = root["base"]) {
    if (!base.IsScalar()) throw Error(where(base, path) + ": 'base' expects a file name");
    std::filesystem::path base_path = base.Scalar();
    if (base_path.is_relative()) base_path = std::filesystem::path(path).parent_path() / base_path;
    if (!std::filesystem::is_regular_file(base_path))
      throw Error(where(base, path) + ": 'base' names " + base_path.string() +
                  (std::filesystem::exists(base_path) ? ", which is not a file" : ", which does not exist"));
    apply_file(c, base_path.string(), depth + 1);
  }
  apply_tree(c, root, "", path);
}

// Cross-key checks run once every override is in: their errors name the file and the overrides
// (the value that broke a rule may come from either).
void finish(Config& c, const std::vector<std::string>& overrides) {
  for (const auto& o : overrides) apply_override(c, o);
  const std::string file = c.source;
  for (const auto& o : overrides) c.source += (c.source.empty() ? "--set " : " + --set ") + o;
  validate(c);
  c.source = file;
}

}  // namespace

const char* config_word(data::DatasetFormat value) { return word_of(value); }
const char* config_word(data::EvalTransform value) { return word_of(value); }
const char* config_word(data::JitterMode value) { return word_of(value); }
const char* config_word(data::HsvMode value) { return word_of(value); }
const char* config_word(data::SampleMode value) { return word_of(value); }
const char* config_word(data::CacheMode value) { return word_of(value); }
const char* config_word(loss::ClassLoss value) { return word_of(value); }
const char* config_word(model::Head value) { return word_of(value); }
const char* config_word(runtime::Precision value) { return word_of(value); }
const char* config_word(train::GammaScheduleType value) { return word_of(value); }
const char* config_word(train::LrPolicy value) { return word_of(value); }
const char* config_word(train::OptimizerKind value) { return word_of(value); }

const std::vector<ConfigKeyInfo>& config_keys() {
  static const std::vector<ConfigKeyInfo> keys = [] {
    std::vector<ConfigKeyInfo> k;
    for (const auto& f : registry()) k.push_back(f.info);
    return k;
  }();
  return keys;
}

Config default_config() {
  Config c;
  c.data.classes = voc_class_names();
  c.data.train = {{"data/VOCdevkit/VOC2007", "trainval"}, {"data/VOCdevkit/VOC2012", "trainval"}};
  c.data.test = {{"data/VOCdevkit/VOC2007", "test"}};
  for (int s = 320; s <= 608; s += 32) c.data.multiscale_sizes.push_back(s);
  c.model.anchors = voc_anchors();
  return c;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  Config c = default_config();
  apply_file(c, path, 0);
  c.source = path;
  finish(c, overrides);
  return c;
}

Config parse_config(const std::string& yaml_text, const std::string& origin,
                    const std::vector<std::string>& overrides) {
  Config c = default_config();
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw Error(origin + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  if (!root.IsNull()) {
    if (!root.IsMap()) throw Error(origin + ": a config must be a YAML map of sections");
    if (root["base"]) throw Error(origin + ": 'base:' is only allowed in config files");
    apply_tree(c, root, "", origin);
  }
  c.source = origin;
  finish(c, overrides);
  return c;
}

void apply_override(Config& c, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) throw Error("--set '" + assignment + "': expected section.key=value");
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  const Field* f = find_field(path);
  const std::string origin = "--set " + path;
  if (!f && !is_section(path)) throw Error(origin + ": unknown config key '" + path + "'" + suggestion(path));
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(origin + ": cannot parse value '" + text + "': " + e.msg);
  }
  if (f) return f->set(c, value, origin);
  // A whole section: --set 'data.augment={jitter: 0, flip: false}'.
  if (!value.IsMap()) throw Error(origin + ": '" + path + "' is a section and expects a map such as {key: value}");
  apply_tree(c, value, path, origin);
}

namespace {

[[noreturn]] void invalid(const Config& c, const std::string& key, const std::string& what) {
  throw Error((c.source.empty() ? std::string("config") : c.source) + ": config key '" + key + "' " + what);
}

void validate_gamma_schedule(const Config& c) {
  const auto& gs = c.loss.focal.gamma_schedule;
  if (gs.type == GammaScheduleType::Step) {
    if (gs.values.size() != gs.milestones.size() + 1)
      invalid(c, "loss.focal.gamma_schedule.values",
              "must have one more value than milestones (" + std::to_string(gs.milestones.size()) + "), got " +
                  std::to_string(gs.values.size()));
    for (std::size_t i = 1; i < gs.milestones.size(); ++i)
      if (gs.milestones[i] <= gs.milestones[i - 1])
        invalid(c, "loss.focal.gamma_schedule.milestones", "must be increasing");
  }
  if ((gs.type == GammaScheduleType::Linear || gs.type == GammaScheduleType::Cosine) && gs.span_end <= gs.span_begin)
    invalid(c, "loss.focal.gamma_schedule.span_end", "must be greater than span_begin");
  // train::focal_gamma reads loss.focal.gamma only under a constant schedule, so a gamma set
  // next to any other schedule would silently do nothing. Only a value other than the default
  // can be caught: to_yaml writes every key, so checkpoints and config dumps carry the default.
  const double gamma = c.loss.focal.gamma;
  if (gs.type != GammaScheduleType::Constant && gamma != FocalConfig{}.gamma) {
    const std::string type = Codec<GammaScheduleType>::encode(gs.type).Scalar();
    const std::string instead = gs.type == GammaScheduleType::Step
                                    ? "set the gammas in loss.focal.gamma_schedule.values"
                                    : "set the gamma the ramp reaches in loss.focal.gamma_schedule.end (and where it "
                                      "starts in loss.focal.gamma_schedule.start)";
    invalid(c, "loss.focal.gamma",
            "is " + Codec<double>::encode(gamma).Scalar() + ", but loss.focal.gamma_schedule.type is " + type +
                ", which ignores it: " + instead + " and leave loss.focal.gamma at its default (" +
                Codec<double>::encode(FocalConfig{}.gamma).Scalar() +
                "), or use loss.focal.gamma_schedule.type constant");
  }
}

void validate_focal_alpha(const Config& c) {
  const auto& a = c.loss.focal.alpha;
  if (a.kind == AlphaSpec::Kind::PerClass && a.per_class.size() != c.data.classes.size())
    invalid(c, "loss.focal.alpha",
            "lists " + std::to_string(a.per_class.size()) + " values but data.classes has " +
                std::to_string(c.data.classes.size()));
  if (a.kind == AlphaSpec::Kind::Scalar && a.scalar <= 0) invalid(c, "loss.focal.alpha", "must be > 0");
  for (double v : a.per_class)
    if (v < 0) invalid(c, "loss.focal.alpha", "values must be >= 0");
}

}  // namespace

void validate(const Config& c) {
  auto fail = [&](const std::string& key, const std::string& what) { invalid(c, key, what); };
  if (c.data.classes.empty() && c.model.head == Head::Region) fail("data.classes", "must list at least one class");
  {
    std::set<std::string> seen;
    for (const auto& n : c.data.classes)
      if (!seen.insert(n).second) fail("data.classes", "lists '" + n + "' twice");
  }
  // The run folder is runs/<train.name>: a name, not a path.
  if (c.train.name.empty() || c.train.name.find('/') != std::string::npos || c.train.name == "." ||
      c.train.name.find("..") != std::string::npos)
    fail("train.name",
         "must be a plain name (no '/' or '..'), got '" + c.train.name + "'; use train.output for a path");
  if (c.train.subdivisions > 0 && c.train.max_batches > std::numeric_limits<int64_t>::max() / c.train.subdivisions)
    fail("train.max_batches",
         "times train.subdivisions overflows 64-bit integers; got " + std::to_string(c.train.max_batches));
  if (c.data.augment.letterbox_scale.size() != 2 ||
      c.data.augment.letterbox_scale[0] > c.data.augment.letterbox_scale[1])
    fail("data.augment.letterbox_scale", "must be [lo, hi] with lo <= hi");
  if (c.data.input_size % 32 != 0)
    fail("data.input_size", "must be a multiple of 32, got " + std::to_string(c.data.input_size));
  for (int s : c.data.multiscale_sizes)
    if (s % 32 != 0) fail("data.multiscale_sizes", "sizes must be multiples of 32, got " + std::to_string(s));
  if (c.model.anchors.empty() || c.model.anchors.size() % 2 != 0)
    fail("model.anchors", "must hold (w, h) pairs, got " + std::to_string(c.model.anchors.size()) + " numbers");
  if (c.train.batch % c.train.subdivisions != 0)
    fail("train.subdivisions", "must divide train.batch (" + std::to_string(c.train.batch) + "), got " +
                                   std::to_string(c.train.subdivisions));
  if (c.train.steps.size() != c.train.scales.size())
    fail("train.scales", "must have one value per train.steps entry (" + std::to_string(c.train.steps.size()) +
                             "), got " + std::to_string(c.train.scales.size()));
  for (std::size_t i = 1; i < c.train.steps.size(); ++i)
    if (c.train.steps[i] <= c.train.steps[i - 1]) fail("train.steps", "must be increasing");
  validate_gamma_schedule(c);
  validate_focal_alpha(c);
  if (c.classify.finetune_batches > 0 && (c.classify.finetune_size <= 0 || c.classify.finetune_size % 32 != 0))
    fail("classify.finetune_size", "must be a positive multiple of 32 when classify.finetune_batches > 0, got " +
                                       std::to_string(c.classify.finetune_size));
  if (c.classify.max_crop > 0 && c.classify.min_crop > c.classify.max_crop)
    fail("classify.min_crop", "must not exceed classify.max_crop");
  if (c.classify.finetune_max_crop > 0 && c.classify.finetune_min_crop > c.classify.finetune_max_crop)
    fail("classify.finetune_min_crop", "must not exceed classify.finetune_max_crop");
}

std::string to_yaml(const Config& c) {
  YAML::Node root(YAML::NodeType::Map);
  for (const auto& f : registry()) {
    // Walk/create the nested maps of the dotted path.
    std::vector<std::string> parts;
    std::stringstream ss(f.info.path);
    for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
    YAML::Node node = root;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      if (!node[parts[i]]) node[parts[i]] = YAML::Node(YAML::NodeType::Map);
      node.reset(node[parts[i]]);
    }
    node[parts.back()] = f.get(c);
  }
  YAML::Emitter e;
  e << root;
  return std::string(e.c_str()) + "\n";
}

int classifier_input_size(const Config& c, int64_t updates_left) {
  const bool finetune = c.classify.finetune_batches > 0 && updates_left < c.classify.finetune_batches;
  return finetune ? c.classify.finetune_size : c.data.input_size;
}

}  // namespace yolo2
