#include "yolo2/eval/evaluator.hpp"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "yolo2/data/loader.hpp"
#include "yolo2/eval/coco_json.hpp"
#include "yolo2/eval/report.hpp"
#include "yolo2/eval/results_io.hpp"
#include "yolo2/model/autocast_scope.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::eval {

std::vector<std::vector<GroundTruthBox>> ground_truth(const data::Dataset& ds) {
  std::vector<std::vector<GroundTruthBox>> gt(ds.images.size());
  for (std::size_t i = 0; i < ds.images.size(); ++i)
    for (const auto& o : ds.images[i].objects)
      gt[i].push_back({o.label, PixelBox{o.x1, o.y1, o.x2, o.y2}, o.difficult});
  return gt;
}

EvalRun evaluate_model(const model::FusedYoloV2& fused, const data::Dataset& ds, const EvalOptions& options,
                       const c10::Device& device, const std::function<void(int64_t, int64_t)>& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const bool cuda = device.is_cuda();
  const auto format = cuda && options.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  model::FusedYoloV2 net = fused;  // shares the folded weights unless the layout changes
  if (format != at::MemoryFormat::Contiguous) net.set_memory_format(format);
  auto shared = std::make_shared<const data::Dataset>(ds);
  data::LoaderOptions lo = options.loader;
  lo.pin_memory = device.is_cuda();   // asynchronous copies to the GPU
  lo.device_side = device.is_cuda();  // of bytes, made float there
  data::DeviceFeed loader(std::make_unique<data::Loader>(shared, lo), device);
  EvalRun run;
  int64_t done = 0;
  const int64_t total = static_cast<int64_t>(ds.images.size());
  while (auto batch = loader.next()) {
    at::Tensor raw;
    {
      const model::AutocastScope autocast(cuda ? options.autocast : at::kFloat, device.type());
      raw = net.forward(data::network_input(*batch, device, format));
    }
    // On a GPU, decoding and the candidates stay there and come back once per batch (detect_batch).
    const RegionDecoded d = decode_region(raw, net.spec().anchors, net.spec().num_classes);
    std::vector<BatchImage> images;
    for (std::size_t j = 0; j < batch->image_indices.size(); ++j) {
      const int idx = batch->image_indices[j];
      const auto& rec = ds.images[static_cast<std::size_t>(idx)];
      images.push_back({static_cast<int64_t>(j), batch->transforms[j], rec.width, rec.height, idx});
    }
    if (cuda) {
      for (auto& dets : detect_batch(d, images, batch->size, batch->size, options.detect))
        run.detections.insert(run.detections.end(), dets.begin(), dets.end());
    } else {
      for (const BatchImage& im : images) {
        const auto dets = detect_image(d, im.b, im.transform, batch->size, batch->size, im.image_w, im.image_h,
                                       im.image_index, options.detect);
        run.detections.insert(run.detections.end(), dets.begin(), dets.end());
      }
    }
    done += static_cast<int64_t>(batch->image_indices.size());
    if (progress) progress(done, total);
  }
  score(run, ds, options);
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  run.images_per_second = run.seconds > 0 ? static_cast<double>(total) / run.seconds : 0;
  return run;
}

std::string format_map_table(const MapResult& r) {
  std::size_t w = 5;
  for (const auto& c : r.per_class) w = std::max(w, c.name.size());
  std::ostringstream os;
  const std::string rule(w + 44, '-');
  os << rule << "\n"
     << std::left << std::setw(static_cast<int>(w)) << "class" << std::right << std::setw(7) << "gts" << std::setw(7)
     << "diff" << std::setw(8) << "dets" << std::setw(9) << "recall" << std::setw(9) << "AP"
     << "\n"
     << rule << "\n";
  for (const auto& c : r.per_class) {
    os << std::left << std::setw(static_cast<int>(w)) << c.name << std::right << std::setw(7) << c.num_gt
       << std::setw(7) << c.num_difficult << std::setw(8) << c.num_detections << std::fixed << std::setprecision(4);
    const double recall = c.recall.empty() ? 0.0 : c.recall.back();
    if (std::isnan(c.ap))
      os << std::setw(9) << "-" << std::setw(9) << "n/a";
    else
      os << std::setw(9) << recall << std::setw(9) << c.ap;
    os << "\n";
  }
  os << rule << "\n"
     << std::left << std::setw(static_cast<int>(w)) << ("mAP@" + std::to_string(r.iou_threshold).substr(0, 4))
     << std::right << std::setw(40) << to_string(r.metric) << std::setw(4) << " " << std::fixed << std::setprecision(4)
     << r.map << "\n"
     << rule << "\n";
  return os.str();
}

void write_map_json(const std::string& path, const MapResult& r) {
  nlohmann::ordered_json j;
  j["metric"] = to_string(r.metric);
  j["iou"] = r.iou_threshold;
  j["map"] = std::isnan(r.map) ? nlohmann::ordered_json() : nlohmann::ordered_json(r.map);
  nlohmann::ordered_json per = nlohmann::ordered_json::object();
  nlohmann::ordered_json details = nlohmann::ordered_json::object();
  for (const auto& c : r.per_class) {
    per[c.name] = std::isnan(c.ap) ? nlohmann::ordered_json() : nlohmann::ordered_json(c.ap);
    details[c.name] = {{"ground_truths", c.num_gt},
                       {"difficult", c.num_difficult},
                       {"detections", c.num_detections},
                       {"true_positives", c.true_positives},
                       {"false_positives", c.false_positives},
                       {"recall", c.recall.empty() || std::isnan(c.recall.back()) ? 0.0 : c.recall.back()}};
  }
  j["per_class"] = per;
  j["images"] = r.images;
  j["detections"] = r.detections;
  j["classes"] = details;
  util::write_file_atomic(path, j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
}

std::vector<std::string> write_eval_report(const std::string& dir, const std::string& split_name,
                                           const data::Dataset& ds, const EvalRun& run) {
  std::vector<std::string> ids;
  ids.reserve(ds.images.size());
  for (const auto& im : ds.images) ids.push_back(im.id);
  std::vector<std::string> files = write_voc_results((std::filesystem::path(dir) / "results").string(), split_name,
                                                     ds.class_names, ids, run.detections);
  const std::string json = (std::filesystem::path(dir) / "map.json").string();
  write_map_json(json, run.metrics);
  files.push_back(json);
  const auto plots = save_pr_plots(run.metrics, (std::filesystem::path(dir) / "pr").string());
  files.insert(files.end(), plots.begin(), plots.end());
  if (run.coco) {
    files.push_back((std::filesystem::path(dir) / "coco.json").string());
    write_coco_json(files.back(), *run.coco, ds.class_names);
    files.push_back((std::filesystem::path(dir) / "detections.json").string());
    write_coco_results(files.back(), ds, run.detections);
  }
  return files;
}

void score(EvalRun& run, const data::Dataset& ds, const EvalOptions& options) {
  run.metrics = evaluate_voc(ground_truth(ds), run.detections, ds.class_names, options.voc);
  if (options.coco)
    run.coco = evaluate_coco(coco_ground_truth(ds), coco_detections(run.detections), static_cast<int>(ds.images.size()),
                             static_cast<int>(ds.class_names.size()), coco_image_order(ds));
}

double headline_map(const EvalRun& run) { return run.coco ? run.coco->stats[0] : run.metrics.map; }

std::vector<double> per_class_ap(const EvalRun& run) {
  std::vector<double> out;
  if (run.coco) {
    for (double ap : run.coco->per_class_ap) out.push_back(ap > -1 ? ap : std::nan(""));
  } else {
    for (const auto& c : run.metrics.per_class) out.push_back(c.ap);
  }
  return out;
}

std::string format_run_table(const EvalRun& run, const std::vector<std::string>& class_names) {
  return run.coco ? format_coco_table(*run.coco, class_names) : format_map_table(run.metrics);
}

void write_coco_json(const std::string& path, const CocoResult& r, const std::vector<std::string>& class_names) {
  nlohmann::ordered_json j;
  j["metric"] = "coco";
  j["stat_names"] = coco_stat_names();
  nlohmann::ordered_json stats = nlohmann::ordered_json::object();
  for (std::size_t i = 0; i < r.stats.size(); ++i) stats[coco_stat_names()[i]] = r.stats[i];
  j["stats"] = stats;
  j["per_class_ap"] = r.per_class_ap;
  nlohmann::ordered_json classes = nlohmann::ordered_json::object();
  for (std::size_t k = 0; k < class_names.size() && k < r.per_class_ap.size(); ++k)
    classes[class_names[k]] =
        r.per_class_ap[k] > -1 ? nlohmann::ordered_json(r.per_class_ap[k]) : nlohmann::ordered_json();
  j["classes"] = classes;
  j["images"] = r.images;
  j["detections"] = r.detections;
  util::write_file_atomic(path, j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
}

}  // namespace yolo2::eval
