// The typed configuration: YAML read once into these structs, overridden with `--set key=value`,
// validated, and passed down (each component takes its own section). Every key, its default and
// its meaning are declared in one place, src/config.cpp (`config_keys()` lists them; the README's
// config reference is printed by `yolo2 config --reference`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "yolo2/data/choices.hpp"
#include "yolo2/loss/choices.hpp"
#include "yolo2/model/choices.hpp"
#include "yolo2/runtime/choices.hpp"
#include "yolo2/train/choices.hpp"

namespace yolo2 {

using data::DatasetSplit;  // data/choices.hpp

// Each choice is an enum owned by the component that acts on it, and so is each section that is one
// component's options (augment, model, runtime, distributed): light headers, so that this header
// stays light and the component includes its own options, not the config. The config names them here.
using data::AugmentOptions;
using data::CacheMode;
using data::DatasetFormat;
using data::EvalTransform;
using data::HsvMode;
using data::JitterMode;
using data::SampleMode;
using loss::ClassLoss;
using model::Head;
using model::ModelOptions;
using runtime::GroupOptions;
using runtime::Precision;
using runtime::RuntimeOptions;
using train::GammaScheduleType;
using train::LrPolicy;
using train::OptimizerKind;

// Focal alpha: a number for every class, one number per class, or `auto` (inverse class
// frequency of the training set, normalised to mean 1).
struct AlphaSpec {
  enum class Kind { Scalar, PerClass, Auto } kind = Kind::Scalar;
  double scalar = 1.0;
  std::vector<double> per_class;
};

struct DataConfig {
  std::vector<std::string> classes;
  std::vector<DatasetSplit> train;
  std::vector<DatasetSplit> test;
  bool train_difficult = false;  // darknet drops difficult objects from training
  bool skip_unknown_classes = false;
  bool skip_bad_images = false;  // empty or truncated images: skipped and counted instead of an error
  int input_size = 416;
  std::vector<int> multiscale_sizes;  // empty: train at input_size only
  int multiscale_every = 10;          // iterations between size changes
  int multiscale_final = 200;         // the last N iterations use the largest size (darknet)
  EvalTransform eval_transform = EvalTransform::Resize;
  AugmentOptions augment;
  int workers = 2;
  int prefetch = 4;  // batches queued ahead of the consumer
  int max_boxes = 30;
  SampleMode sample = SampleMode::Shuffle;  // each epoch a permutation, or draws with replacement (darknet)
  CacheMode cache = CacheMode::None;        // ram: each image decoded once, kept decoded in memory
};

struct GammaSchedule {
  GammaScheduleType type = GammaScheduleType::Constant;
  double start = 0.0;              // linear / cosine: gamma at span_begin
  double end = 2.0;                // linear / cosine: gamma at span_end and after
  double span_begin = 0.0;         // fraction of training where the ramp starts
  double span_end = 0.5;           // fraction of training where the ramp ends
  std::vector<double> milestones;  // step: fractions of training
  std::vector<double> values;      // step: gamma before the first milestone, then after each
};

struct FocalConfig {
  double gamma = 2.0;
  AlphaSpec alpha;
  double sigmoid_alpha = -1.0;  // sigmoid_focal only: torchvision's positive weight (< 0: off)
  GammaSchedule gamma_schedule;
};

struct LossConfig {
  ClassLoss classification = ClassLoss::CrossEntropy;
  FocalConfig focal;
  double object_scale = 5.0;
  double noobject_scale = 1.0;
  double class_scale = 1.0;
  double coord_scale = 1.0;
  double thresh = 0.6;
  bool rescore = true;
  bool small_box_weight = true;   // coord_scale * (2 - w*h) (darknet since 2017-03)
  int64_t warmup_images = 12800;  // prior warm-up toward the anchors for this many images
  double warmup_scale = 0.01;
};

struct TrainConfig {
  OptimizerKind optimizer = OptimizerKind::Sgd;
  int batch = 64;
  int subdivisions = 8;
  double lr = 0.001;
  double momentum = 0.9;
  double decay = 0.0005;
  int burn_in = 1000;
  double burn_in_power = 4.0;
  LrPolicy policy = LrPolicy::Steps;
  double power = 4.0;  // poly: lr * (1 - update / max_batches)^power (darknet's classifiers)
  std::vector<int64_t> steps{40000, 60000};
  std::vector<double> scales{0.1, 0.1};
  int64_t max_batches = 80200;
  int epochs = 0;            // > 0: overrides max_batches with epochs * ceil(images / batch)
  std::string init_weights;  // darknet .weights (full or prefix) or a yolo2 checkpoint
  std::string output;        // run folder; empty: runs/<name>
  std::string name = "yolo2";
  int checkpoint_every = 100;     // iterations
  double checkpoint_minutes = 0;  // > 0: also save when this many minutes have passed since the last save
  int log_every = 1;
  bool tensorboard = true;      // TensorBoard event files in the run folder (train/tensorboard_hook.cpp)
  bool skip_nonfinite = false;  // skip a batch with a NaN/inf loss instead of stopping
  bool freeze_bn = false;       // batch norm in eval mode, gamma/beta fixed (fine-tuning; mmdet's norm_eval)
};

struct EvalConfig {
  std::string metric = "voc07";
  double iou = 0.5;
  bool strict_iou = false;  // true: IoU > iou (py-faster-rcnn); false: IoU >= iou (VOC devkit)
  double conf_thresh = 0.005;
  double detect_thresh = 0.25;
  double nms = 0.45;
  int max_detections = 100;  // per image
  int every = 0;             // iterations between evaluations during training; 0: at the end only
  int batch = 8;
};

// `yolo2 pretrain` (model.head: classifier): darknet's classifier augmentation and the fine-tune
// stage at a larger size that follows the main one (darknet19.cfg at 224, then darknet19_448.cfg).
struct ClassifyConfig {
  int min_crop = 0;       // the image's shorter side is scaled to [min_crop, max_crop] before the crop (0: input size)
  int max_crop = 0;       // 0: twice the input size (darknet's default)
  double aspect = 1.0;    // aspect-ratio change drawn from [1/aspect, aspect]
  double angle = 0.0;     // rotation drawn from [-angle, angle] degrees
  int finetune_size = 0;  // > 0: the fine-tune stage's input size
  int64_t finetune_batches = 0;  // its length in iterations (0: no fine-tune stage)
  double finetune_lr = 0.001;    // its learning rate (poly with train.power, no burn-in)
  int finetune_min_crop = 0;     // its crop range (0: finetune_size; darknet19_448.cfg: 448)
  int finetune_max_crop = 0;     // 0: twice finetune_size (darknet19_448.cfg: 512)
  int prefix_layers = 23;        // the detector prefix written at the end (darknet19_448.conv.23)
};

struct Config {
  DataConfig data;
  ModelOptions model;
  LossConfig loss;
  TrainConfig train;
  EvalConfig eval;
  ClassifyConfig classify;
  RuntimeOptions runtime;
  GroupOptions distributed;
  std::string source;  // the file it was read from ("" for defaults)
};

// Description of one key, for documentation (`yolo2 config --reference`).
struct ConfigKeyInfo {
  std::string path;
  std::string type;
  std::string default_value;
  std::string doc;
};
const std::vector<ConfigKeyInfo>& config_keys();

// The defaults: darknet's yolov2-voc recipe on VOC07+12 (yolov2-reference.md §1.1, §1.2).
Config default_config();

// Reads a YAML file (following `base:` includes, relative to the file), applies `key=value`
// overrides in order and validates. Errors name the file, line and key path.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Same from YAML text; `origin` names it in errors.
Config parse_config(const std::string& yaml_text, const std::string& origin = "<string>",
                    const std::vector<std::string>& overrides = {});
// Applies one `section.key=value` override (value parsed as YAML). Does not validate.
void apply_override(Config& config, const std::string& assignment);
// Cross-key checks (batch divisible by subdivisions, anchors in pairs, ...).
void validate(const Config& config);
// The resolved config as YAML, reloadable with parse_config.
std::string to_yaml(const Config& config);

const std::vector<std::string>& voc_class_names();
const std::vector<double>& voc_anchors();

// `yolo2 pretrain`'s input size at an update after which `updates_left` updates of the run remain:
// classify.finetune_size in the fine-tune stage (its last classify.finetune_batches updates), else
// data.input_size. 0 left: the size the run ends at (the exported network's).
int classifier_input_size(const Config& config, int64_t updates_left);

}  // namespace yolo2
