#include "yolo2/options.hpp"

#include <ATen/ATen.h>

#include "yolo2/runtime/setup.hpp"

namespace yolo2 {

data::ParseOptions parse_options(const Config& c, bool train, std::vector<std::string> class_names) {
  data::ParseOptions o;
  o.class_names = class_names.empty() ? c.data.classes : std::move(class_names);
  o.keep_difficult = train ? c.data.train_difficult : true;
  o.skip_unknown_classes = c.data.skip_unknown_classes;
  o.skip_bad_images = c.data.skip_bad_images;
  return o;
}

data::LoaderOptions loader_options(const Config& c, bool train) {
  data::LoaderOptions o;
  o.batch_size = train ? c.train.batch / c.train.subdivisions : c.eval.batch;
  o.workers = runtime::resolved_workers(c.data.workers);
  o.prefetch = c.data.prefetch;
  o.seed = c.runtime.seed;
  o.train = train;
  o.max_boxes = c.data.max_boxes;
  o.sample = c.data.sample;
  o.cache_images = c.data.cache == CacheMode::Ram;
  o.augment = c.data.augment;
  o.eval_transform = c.data.eval_transform;
  o.input_size = c.data.input_size;
  return o;
}

data::CropOptions crop_options(const ClassifyConfig& c, bool finetune) {
  if (finetune) return {c.finetune_min_crop, c.finetune_max_crop, c.aspect, c.angle};
  return {c.min_crop, c.max_crop, c.aspect, c.angle};
}

loss::RegionLossOptions region_loss_options(const Config& c) {
  loss::RegionLossOptions o;
  o.anchors = c.model.anchors;
  o.num_classes = static_cast<int>(c.data.classes.size());
  o.classification = c.loss.classification;
  o.object_scale = c.loss.object_scale;
  o.noobject_scale = c.loss.noobject_scale;
  o.class_scale = c.loss.class_scale;
  o.coord_scale = c.loss.coord_scale;
  o.thresh = c.loss.thresh;
  o.rescore = c.loss.rescore;
  o.small_box_weight = c.loss.small_box_weight;
  o.warmup_images = c.loss.warmup_images;
  o.warmup_scale = c.loss.warmup_scale;
  o.max_boxes = c.data.max_boxes;
  o.sigmoid_alpha = c.loss.focal.sigmoid_alpha;
  const AlphaSpec& a = c.loss.focal.alpha;
  if (a.kind == AlphaSpec::Kind::PerClass)
    o.alpha = at::tensor(a.per_class, at::kFloat);
  else if (a.kind == AlphaSpec::Kind::Scalar && a.scalar != 1.0)
    o.alpha = at::full({o.num_classes}, a.scalar, at::kFloat);
  return o;
}

eval::DetectOptions detect_options(const EvalConfig& e, bool for_map) {
  eval::DetectOptions o;
  o.score_threshold = static_cast<float>(for_map ? e.conf_thresh : e.detect_thresh);
  o.nms_threshold = static_cast<float>(e.nms);
  o.max_detections = e.max_detections;
  return o;
}

eval::VocEvalOptions voc_options(const EvalConfig& e) {
  eval::VocEvalOptions o;
  // coco: COCO's figures head the report; the VOC protocol beside them is VOC2007's.
  o.metric = e.metric == "coco" ? eval::ApMetric::Voc07 : eval::ap_metric_from_string(e.metric);
  o.iou_threshold = e.iou;
  o.inclusive_threshold = !e.strict_iou;
  return o;
}

eval::EvalOptions eval_options(const Config& c) {
  eval::EvalOptions o;
  o.loader = loader_options(c, false);
  o.detect = detect_options(c.eval, true);
  o.voc = voc_options(c.eval);
  o.coco = c.eval.metric == "coco";
  return o;
}

eval::DetectorOptions detector_options(const Config& c) {
  eval::DetectorOptions o;
  o.input_size = c.data.input_size;
  o.eval_transform = c.data.eval_transform;
  return o;
}

}  // namespace yolo2
