#include <nlohmann/json.hpp>

#include <iomanip>
#include <sstream>

#include "yolo2/bench/bench.hpp"
#include "yolo2/runtime/build_info.hpp"

namespace yolo2::bench {

const std::vector<std::string>& measurement_ids() {
  static const std::vector<std::string> ids{"reference_conv_forward",
                                            "reference_conv_backward",
                                            "reference_conv_both",
                                            "train_iteration",
                                            "train_phases",
                                            "train_peak_memory",
                                            "train_peak_gpu_memory",
                                            "reference_conv_both_nhwc",
                                            "train_iteration_other_layout",
                                            "train_phases_other_layout",
                                            "train_peak_memory_other_layout",
                                            "train_peak_gpu_memory_other_layout",
                                            "forward_batch1",
                                            "forward_batch8",
                                            "forward_batch64",
                                            "forward_batch1_libtorch",
                                            "forward_batch8_libtorch",
                                            "opencv_forward_batch1",
                                            "opencv_forward_batch8",
                                            "onnxruntime_forward_batch1",
                                            "onnxruntime_forward_batch8",
                                            "decode_nms",
                                            "voc_scoring",
                                            "loader",
                                            "loader_read",
                                            "loader_decode",
                                            "loader_warp",
                                            "loader_colour",
                                            "loader_pack",
                                            "loader_pack_bytes",
                                            "loader_host_cpu_path",
                                            "loader_host_gpu_path",
                                            "loader_host_gpu_path_cached",
                                            "loader_cached"};
  return ids;
}

std::string format_table(const BenchReport& r) {
  std::ostringstream os;
  os << "\nyolo2 bench: " << r.config << " on " << r.device << " (" << r.precision << "), input " << r.input_size
     << " px, width " << r.width << ", " << r.threads << " thread(s), " << std::fixed << std::setprecision(3)
     << r.gflop_per_image << " GFLOP per forward image\n";
  os << std::string(96, '-') << "\n";
  for (const auto& m : r.results)
    os << std::left << std::setw(48) << m.label << std::right << std::setw(12) << std::setprecision(2) << m.value << " "
       << std::left << std::setw(9) << m.unit << m.note << "\n";
  os << std::string(96, '-') << std::right << "\n";
  return os.str();
}

std::string to_json(const BenchReport& r) {
  nlohmann::ordered_json j;
  j["schema"] = "yolo2.bench/1";
  j["config"] = r.config;
  j["device"] = r.device;
  j["precision"] = r.precision;
  j["input_size"] = r.input_size;
  j["width"] = r.width;
  j["threads"] = r.threads;
  j["gflop_per_image"] = r.gflop_per_image;
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const auto& m : r.results)
    results.push_back({{"id", m.id}, {"label", m.label}, {"value", m.value}, {"unit", m.unit}, {"note", m.note}});
  j["results"] = results;
  j["build"] = nlohmann::ordered_json::parse(runtime::to_json(runtime::build_info()));
  return j.dump(2) + "\n";
}

}  // namespace yolo2::bench
