// The config-to-options boundary: every component's options are built from the Config here, and
// only here. Components below it (data, loss, eval, model) take their options, not the Config; the
// callers above it (train, cli) build what they need through these functions.
#pragma once

#include <string>
#include <vector>

#include "yolo2/config.hpp"
#include "yolo2/data/dataset.hpp"
#include "yolo2/data/image_folder.hpp"
#include "yolo2/data/loader.hpp"
#include "yolo2/eval/detector.hpp"
#include "yolo2/eval/evaluator.hpp"
#include "yolo2/loss/region_loss.hpp"

namespace yolo2 {

// Annotation parsing: the config's classes (or `class_names` when given, e.g. read from a dataset's
// classes.txt), data.skip_unknown_classes; difficult objects dropped for training unless
// data.train_difficult, kept otherwise.
data::ParseOptions parse_options(const Config& config, bool train, std::vector<std::string> class_names = {});

// data.workers, prefetch, max_boxes, sample, augment, input_size, eval_transform and runtime.seed; the
// batch is train.batch / train.subdivisions when training, eval.batch otherwise. Multi-scale, the
// stream position and sharding are the trainer's.
data::LoaderOptions loader_options(const Config& config, bool train);

// The classifier's crop (classify.min_crop, max_crop, aspect, angle), or with `finetune` the
// fine-tune stage's (classify.finetune_min_crop, finetune_max_crop; the same aspect and angle).
data::CropOptions crop_options(const ClassifyConfig& classify, bool finetune);

// The loss section, the anchors, the class count and data.max_boxes. loss.focal.alpha: auto is
// left undefined here: the trainer fills it from the training set (loss::inverse_frequency_alpha).
loss::RegionLossOptions region_loss_options(const Config& config);

// eval.conf_thresh (for_map) or eval.detect_thresh, eval.nms, eval.max_detections.
eval::DetectOptions detect_options(const EvalConfig& eval, bool for_map);
// eval.metric, eval.iou, eval.strict_iou.
eval::VocEvalOptions voc_options(const EvalConfig& eval);
// What evaluate_model needs: the evaluation loader, detection for mAP, and the VOC protocol.
eval::EvalOptions eval_options(const Config& config);
// The detector's input: data.input_size and data.eval_transform.
eval::DetectorOptions detector_options(const Config& config);

}  // namespace yolo2
