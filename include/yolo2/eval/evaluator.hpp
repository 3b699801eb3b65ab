// Checkpoint -> detections -> metrics -> report files. Used by `yolo2 eval`, by the trainer's
// periodic evaluation and by the benchmarks.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "yolo2/data/dataset.hpp"
#include "yolo2/data/loader.hpp"
#include "yolo2/eval/coco_eval.hpp"
#include "yolo2/eval/decode.hpp"
#include "yolo2/eval/voc_ap.hpp"
#include "yolo2/model/yolov2.hpp"

namespace yolo2::eval {

struct EvalRun {
  MapResult metrics;                  // the VOC protocol's (always)
  std::optional<CocoResult> coco;     // COCO's figures, with eval.metric: coco
  std::vector<Detection> detections;  // Detection::image indexes the dataset's images
  double seconds = 0;
  double images_per_second = 0;
};

// Ground truth of a dataset in evaluation form (difficult objects kept and flagged).
std::vector<std::vector<GroundTruthBox>> ground_truth(const data::Dataset& dataset);

struct EvalOptions {
  data::LoaderOptions loader;  // evaluation loader: input size, eval transform, batch, workers
  DetectOptions detect;        // detection for the mAP (low score threshold)
  VocEvalOptions voc;          // the VOC protocol
  bool coco = false;           // also COCO's figures (eval.metric: coco), which then head the report
  // The forward pass's precision and layout on a GPU (evaluation during training runs in the run's
  // runtime.precision and runtime.channels_last; `yolo2 eval` in fp32, NCHW). Ignored on the CPU,
  // where the fp32 oneDNN plan runs.
  at::ScalarType autocast = at::kFloat;  // kBFloat16 / kHalf: the forward under autocast
  bool channels_last = false;            // NHWC input and weights
};

// Runs the network over every image of `dataset`, decodes, applies NMS and scores with the VOC
// protocol. `progress(done, total)` is called after each batch.
EvalRun evaluate_model(const model::FusedYoloV2& net, const data::Dataset& dataset, const EvalOptions& options,
                       const c10::Device& device, const std::function<void(int64_t, int64_t)>& progress = {});

// Scores `run.detections` against `dataset`: the VOC protocol, and COCO's with options.coco.
void score(EvalRun& run, const data::Dataset& dataset, const EvalOptions& options);

// The run's headline figure (COCO's AP with options.coco, else the VOC mAP) and the per-class AP
// that goes with it (NaN for a class without ground truth).
double headline_map(const EvalRun& run);
std::vector<double> per_class_ap(const EvalRun& run);
// The run's table: COCO's (with its figures) or the VOC one (format_map_table).
std::string format_run_table(const EvalRun& run, const std::vector<std::string>& class_names);

// COCO's figures as JSON: {"metric": "coco", "stat_names", "stats": {name: value}, "per_class_ap",
// "classes": {name: ap}, "images", "detections"}, atomically.
void write_coco_json(const std::string& path, const CocoResult& result, const std::vector<std::string>& class_names);

// The terminal table: class, ground truths (difficult apart), detections, recall, AP, and mAP.
std::string format_map_table(const MapResult& result);

// {"metric", "iou", "map", "per_class": {name: ap}, "images", "detections"} (+ details), atomically.
void write_map_json(const std::string& path, const MapResult& result);

// comp4 results files, map.json and PR-curve PNGs into `dir` (with COCO's figures also coco.json
// and detections.json, COCO's results form); returns the files written.
std::vector<std::string> write_eval_report(const std::string& dir, const std::string& split_name,
                                           const data::Dataset& dataset, const EvalRun& run);

}  // namespace yolo2::eval
