#include "yolo2/bench/bench.hpp"

#include <ATen/ATen.h>
#include <unistd.h>
#include <opencv2/dnn.hpp>

#include <spdlog/spdlog.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>

#include "../config_words.hpp"
#include "measure.hpp"
#include "yolo2/error.hpp"
#include "yolo2/eval/decode.hpp"
#include "yolo2/io/darknet.hpp"
#include "yolo2/io/onnx_export.hpp"
#include "yolo2/model/yolov2.hpp"
#include "yolo2/options.hpp"
#include "yolo2/runtime/precision.hpp"
#include "yolo2/runtime/setup.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::bench {
namespace {

std::string pct(double v, double ref) { return std::to_string(static_cast<int>(std::lround(100 * v / ref))) + "%"; }
std::string num(double v) { return std::to_string(v).substr(0, std::to_string(v).find('.') + 2); }
std::string ratio(double v) { return std::to_string(v).substr(0, std::to_string(v).find('.') + 3) + "x"; }

// Everything the sections share.
struct Run {
  const Config& config;
  const BenchOptions& options;
  BenchReport& report;
  Target target;
  ConvReference ref;
  void add(std::string id, std::string label, double value, std::string unit, std::string note = "") {
    report.results.push_back({std::move(id), std::move(label), value, std::move(unit), std::move(note)});
  }
};

// The training iteration in one layout, its phases and peak memory; `suffix` tells the layouts apart.
double train_section(Run& r, bool channels_last, const std::string& suffix) {
  const std::string layout = channels_last ? "NHWC" : "NCHW";
  reset_peak_rss();
  const TrainStep tb = train_step(r.config, std::max(3, r.options.repeats / 2), channels_last, r.target);
  const double rss = peak_rss_mib();
  const double g = 3 * r.report.gflop_per_image * tb.images_per_s;
  const int mini = r.config.train.batch / r.config.train.subdivisions;
  r.add("train_iteration" + suffix, "training iteration, " + layout, tb.images_per_s, "images/s",
        num(g) + " GFLOP/s = " + pct(g, r.ref.both) + " of reference fwd+bwd; batch " + std::to_string(mini) +
            "; fwd, loss, bwd, SGD step" + (r.target.cuda() ? "; iterations back to back" : ""));
  const double all = tb.forward_ms + tb.loss_ms + tb.backward_ms + tb.step_ms;
  r.add("train_phases" + suffix, "  phases: forward / region loss / backward / step", all, "ms",
        num(tb.forward_ms) + " / " + num(tb.loss_ms) + " / " + num(tb.backward_ms) + " / " + num(tb.step_ms) + " ms (" +
            pct(tb.forward_ms, all) + " / " + pct(tb.loss_ms, all) + " / " + pct(tb.backward_ms, all) + " / " +
            pct(tb.step_ms, all) + ")" + (r.target.cuda() ? ", synchronised after each phase" : ""));
  r.add("train_peak_memory" + suffix, "  peak resident memory", rss, "MiB", "process VmHWM during the iterations");
  if (tb.peak_gpu_mib >= 0)
    r.add("train_peak_gpu_memory" + suffix, "  peak GPU memory", tb.peak_gpu_mib, "MiB",
          "allocated by LibTorch's caching allocator (torch.cuda.max_memory_allocated)");
  return tb.images_per_s;
}

void training(Run& r) {
  const bool cl = r.config.runtime.channels_last;
  const double ips = train_section(r, cl, "");
  if (!r.options.both_layouts) return;
  // The reference stays the NCHW convolution; this is the same convolution in NHWC.
  const ConvReference nhwc = reference_conv(r.options.repeats, true, r.target);
  r.add("reference_conv_both_nhwc", "reference conv fwd+bwd, NHWC", nhwc.both, "GFLOP/s",
        pct(nhwc.both, r.ref.both) + " of the NCHW reference");
  const std::size_t at_row = r.report.results.size();
  const double other = train_section(r, !cl, "_other_layout");
  r.report.results[at_row].note =
      pct(other, ips) + " of " + (cl ? "NHWC" : "NCHW") + "; " + r.report.results[at_row].note;
}

// OpenCV DNN on the exported network, against our forward times t1 (batch 1) and t8 (batch 8).
void opencv_section(Run& r, model::YoloV2Impl& net, double t1, double t8, const std::string& how) {
  const int s = r.config.data.input_size;
  const auto dir = std::filesystem::temp_directory_path() / ("yolo2-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  io::export_darknet(net, r.config, (dir / "net").string(), 0);
  cv::dnn::Net cvnet = cv::dnn::readNetFromDarknet((dir / "net.cfg").string(), (dir / "net.weights").string());
  std::filesystem::remove_all(dir);
  cvnet.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  cv::setNumThreads(r.report.threads);  // give OpenCV DNN the same cores for the comparison
  cv::Mat img(s, s, CV_8UC3);
  cv::randu(img, 0, 255);
  const cv::Mat blob1 = cv::dnn::blobFromImage(img, 1 / 255.0, cv::Size(s, s), cv::Scalar(), true, false);
  const cv::Mat blob8 =
      cv::dnn::blobFromImages(std::vector<cv::Mat>(8, img), 1 / 255.0, cv::Size(s, s), cv::Scalar(), true, false);
  const double c1 = median_seconds(2, r.options.repeats, [&] { cvnet.setInput(blob1), cvnet.forward(); });
  const double c8 =
      median_seconds(1, std::max(3, r.options.repeats / 2), [&] { cvnet.setInput(blob8), cvnet.forward(); });
  cv::setNumThreads(1);
  r.add("opencv_forward_batch1", "OpenCV DNN forward batch 1", c1 * 1000, "ms", ratio(c1 / t1) + " slower than " + how);
  r.add("opencv_forward_batch8", "OpenCV DNN forward batch 8", 8 / c8, "images/s",
        ratio(c8 / t8) + " slower than " + how);
}

// ONNX Runtime's timing script (run with the user's python3; onnxruntime is not yolo2's dependency):
// MODEL SIZE THREADS REPEATS -> "batch1_s batch8_s" (medians), exit 77 when onnxruntime is missing.
constexpr const char* kOrtScript = R"(import sys, time
try:
    import numpy as np, onnxruntime as ort
except ImportError as e:
    print(e); sys.exit(77)
model, size, threads, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
so = ort.SessionOptions()
so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
def median(batch, warmup, n):
    x = np.random.rand(batch, 3, size, size).astype(np.float32)
    for _ in range(warmup): sess.run(None, {"images": x})
    t = []
    for _ in range(n):
        s = time.perf_counter(); sess.run(None, {"images": x}); t.append(time.perf_counter() - s)
    return sorted(t)[len(t) // 2]
print(ort.__version__, median(1, 2, reps), median(8, 1, max(3, reps // 2)))
)";

// ONNX Runtime (through python3, where onnxruntime is importable) on the exported ONNX model with the
// same threads, against our forward times t1 (batch 1) and t8 (batch 8).
void onnxruntime_section(Run& r, model::YoloV2Impl& net, double t1, double t8, const std::string& how) {
  const auto dir = std::filesystem::temp_directory_path() / ("yolo2-bench-ort-" + std::to_string(::getpid()));
  const std::string model = (dir / "net.onnx").string(), script = (dir / "ort.py").string();
  const auto quoted = [](const std::string& s) {  // for the shell: '...' with ' as '\''
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  std::string last;  // the script's last line: "VERSION BATCH1_S BATCH8_S", or why it cannot run
  int rc = -1;
  try {
    std::filesystem::create_directories(dir);
    io::OnnxExportOptions o;
    o.size = r.config.data.input_size;
    io::export_onnx(net, r.config, model, o);
    util::write_file_atomic(script, kOrtScript);
    const std::string cmd = "python3 " + quoted(script) + " " + quoted(model) + " " + std::to_string(o.size) + " " +
                            std::to_string(r.report.threads) + " " + std::to_string(r.options.repeats) + " 2>/dev/null";
    if (std::FILE* p = ::popen(cmd.c_str(), "r")) {
      char buf[512];
      while (std::fgets(buf, sizeof buf, p))
        if (buf[0] != '\n') last = buf;
      rc = ::pclose(p);
    }
  } catch (const std::exception& e) {
    last = e.what();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::istringstream in(last);
  std::string version;
  double o1 = 0, o8 = 0;
  if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0 || !(in >> version >> o1 >> o8) || o1 <= 0 || o8 <= 0) {
    spdlog::info("bench: ONNX Runtime skipped: {}",
                 last.empty() ? "python3 gave no answer" : last.substr(0, last.find('\n')));
    return;
  }
  r.add("onnxruntime_forward_batch1", "ONNX Runtime " + version + " forward batch 1", o1 * 1000, "ms",
        how + " takes " + ratio(t1 / o1) + " of its time");
  r.add("onnxruntime_forward_batch8", "ONNX Runtime " + version + " forward batch 8", 8 / o8, "images/s",
        how + " takes " + ratio(t8 / o8) + " of its time");
}

// The forward's latency at batch 1 (t1 seconds) and throughput at batch `b` (tb seconds), against
// the reference convolution.
void add_forward(Run& r, double t1, int b, double tb, const std::string& how) {
  const double gflop = r.report.gflop_per_image;
  r.add("forward_batch1", "forward batch 1 (latency), " + how, t1 * 1000, "ms",
        num(gflop / t1) + " GFLOP/s = " + pct(gflop / t1, r.ref.forward) + " of reference fwd");
  const std::string bs = std::to_string(b);
  r.add("forward_batch" + bs, "forward batch " + bs + " (throughput), " + how, b / tb, "images/s",
        num(b * gflop / tb) + " GFLOP/s = " + pct(b * gflop / tb, r.ref.forward) + " of reference fwd");
}

// The loader's host cost per image by stage, the totals of the CPU path and of the GPU path (colour
// and the float conversion on the device), from JPEG and from the decoded cache, and the loader's rate
// with data.cache: ram. The 16-core figures are projections (16 x one core), not measurements.
void add_loader_stages(Run& r, const Config& config, int batches) {
  const LoaderStages st = loader_stages(config);
  const std::string of =
      std::to_string(st.images) + " training images at " + std::to_string(config.data.input_size) + " px, one thread";
  r.add("loader_read", "loader: read the file", st.read, "ms", of);
  r.add("loader_decode", "loader: decode the JPEG", st.decode, "ms", of);
  r.add("loader_warp", "loader: jitter, flip, warp", st.warp, "ms", of);
  r.add("loader_colour", "loader: HSV distortion (CPU path)", st.colour, "ms", of);
  r.add("loader_pack", "loader: pack to float NCHW (CPU path)", st.pack_float, "ms", of);
  r.add("loader_pack_bytes", "loader: pack to bytes NHWC (GPU path)", st.pack_bytes, "ms", of);
  const auto projection = [](double ms) {
    return num(1000.0 / ms) + " images/s per core, " + num(16 * 1000.0 / ms) + " projected on 16 cores";
  };
  const double cpu_path = st.read + st.decode + st.warp + st.colour + st.pack_float;
  const double gpu_path = st.read + st.decode + st.warp + st.pack_bytes;
  r.add("loader_host_cpu_path", "loader host cost per image, CPU path (from JPEG)", cpu_path, "ms",
        projection(cpu_path));
  r.add("loader_host_gpu_path", "loader host cost per image, GPU path (from JPEG)", gpu_path, "ms",
        projection(gpu_path));
  r.add("loader_host_gpu_path_cached", "loader host cost per image, GPU path, cached", st.warp + st.pack_bytes, "ms",
        projection(st.warp + st.pack_bytes));
  r.add("loader_cached", "loader, full augmentation, data.cache: ram", loader_rate(config, batches, true), "images/s",
        std::to_string(runtime::resolved_workers(config.data.workers)) + " worker(s), after one pass");
}

// Decode + NMS of one image's output `raw` (on its device: detect_image's GPU path on a GPU).
void add_decode_nms(Run& r, const model::YoloV2Impl& net, const at::Tensor& raw, const std::string& where) {
  const Config& c = r.config;
  const int s = c.data.input_size;
  const eval::DetectOptions dopt = detect_options(c.eval, true);
  const double td = median_seconds(3, r.options.repeats * 4, [&] {
    const auto d = eval::decode_region(raw, net.spec().anchors, net.spec().num_classes);
    eval::detect_image(d, 0, data::Affine{1, 0, 1, 0}, s, s, s, s, 0, dopt);
  });
  r.add("decode_nms", "decode + NMS per image" + where, td * 1000, "ms",
        "score >= " + std::to_string(c.eval.conf_thresh) + (r.target.cuda() ? "; detections back on the host" : ""));
}

// Forward with batch norm folded, batch 1 and 8 (and LibTorch's op-by-op forward when the oneDNN plan
// runs), OpenCV DNN, then decode + NMS of one image's output.
void inference(Run& r) {
  const Config& c = r.config;
  const int s = c.data.input_size, reps = r.options.repeats;
  const double gflop = r.report.gflop_per_image;
  model::YoloV2 net(model::yolov2_spec(c.model, static_cast<int>(c.data.classes.size())));
  net->eval();
  const model::FusedYoloV2 fused(*net);
  const at::Tensor x1 = at::rand({1, 3, s, s}), x8 = at::rand({8, 3, s, s});
  const std::string how = fused.uses_onednn(x1) ? "oneDNN plan" : "LibTorch ops";
  const double t1 = median_seconds(2, reps, [&] { fused.forward(x1); });
  const double t8 = median_seconds(1, std::max(3, reps / 2), [&] { fused.forward(x8); });
  add_forward(r, t1, 8, t8, how);
  if (fused.uses_onednn(x1)) {  // what the plan buys over LibTorch's op-by-op forward
    model::FusedYoloV2 ops(*net);
    ops.set_backend(model::FusedYoloV2::Backend::LibTorch);
    const double o1 = median_seconds(2, reps, [&] { ops.forward(x1); });
    const double o8 = median_seconds(1, std::max(3, reps / 2), [&] { ops.forward(x8); });
    r.add("forward_batch1_libtorch", "forward batch 1, LibTorch ops", o1 * 1000, "ms",
          num(gflop / o1) + " GFLOP/s; plan " + ratio(o1 / t1) + " faster");
    r.add("forward_batch8_libtorch", "forward batch 8, LibTorch ops", 8 / o8, "images/s",
          num(8 * gflop / o8) + " GFLOP/s; plan " + ratio(o8 / t8) + " faster");
  }
  if (r.options.opencv) opencv_section(r, *net, t1, t8, how);
  if (r.options.onnxruntime) onnxruntime_section(r, *net, t1, t8, how);
  add_decode_nms(r, *net, fused.forward(x1), "");
}

// On a GPU: the network's own forward (eval mode, the precision's autocast) at batch 1 and 64, and
// decode + NMS of one image's output on the device (eval::detect_image's GPU path).
void inference_cuda(Run& r) {
  const Config& c = r.config;
  const int s = c.data.input_size, reps = r.options.repeats;
  const Target& t = r.target;
  model::YoloV2 net(model::yolov2_spec(c.model, static_cast<int>(c.data.classes.size())));
  net->to(t.device);
  net->eval();
  const auto fmt = c.runtime.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  model::set_weight_memory_format(*net, fmt);
  const auto on = at::TensorOptions().device(t.device);
  const at::Tensor x1 = at::rand({1, 3, s, s}, on).contiguous(fmt), x64 = at::rand({64, 3, s, s}, on).contiguous(fmt);
  at::Tensor raw;
  const auto forward = [&](const at::Tensor& x) {
    at::NoGradGuard g;
    runtime::AutocastScope autocast(t.plan, t.device.type());
    raw = net->forward(x);
    t.sync();
  };
  const double t1 = median_seconds(3, reps, [&] { forward(x1); });
  const double t64 = median_seconds(2, std::max(3, reps / 2), [&] { forward(x64); });
  add_forward(r, t1, 64, t64, "LibTorch on " + t.device.str());
  forward(x1);
  add_decode_nms(r, *net, raw.to(at::kFloat), ", on the GPU");
}

}  // namespace

const Measurement* BenchReport::find(const std::string& id) const {
  for (const auto& m : results)
    if (m.id == id) return &m;
  return nullptr;
}

BenchReport run_bench(const Config& config, const BenchOptions& options) {
  if (config.model.head != Head::Region)
    throw yolo2::Error((config.source.empty() ? std::string("the config") : config.source) +
                       ": model.head is classifier; yolo2 bench measures the detector (model.head: region)");
  BenchReport report;
  report.config = config.source;
  report.input_size = config.data.input_size;
  report.width = config.model.width;
  report.threads = runtime::setup_runtime(config.runtime);
  Target target;
  target.device = runtime::resolve_device(config.runtime.device);
  target.plan = runtime::setup_precision(config.runtime.precision, target.device);
  report.device = target.device.str();
  report.precision = yolo2::config_word(config.runtime.precision);
  {
    model::YoloV2 probe(model::yolov2_spec(config.model, static_cast<int>(config.data.classes.size())));
    for (const auto& l : model::infer_shapes(probe->spec(), report.input_size, report.input_size))
      report.gflop_per_image += l.bflops;
  }
  Run r{config, options, report, target, reference_conv(options.repeats, false, target)};
  r.add("reference_conv_forward", "reference 3x3 conv forward (256ch 52x52 b8 NCHW)", r.ref.forward, "GFLOP/s",
        target.cuda() ? "LibTorch/cuDNN" : "LibTorch/oneDNN");
  r.add("reference_conv_backward", "reference 3x3 conv backward", r.ref.backward, "GFLOP/s",
        "input + weight gradients");
  r.add("reference_conv_both", "reference 3x3 conv forward + backward", r.ref.both, "GFLOP/s");
  if (options.train) training(r);
  if (target.cuda())
    inference_cuda(r);  // OpenCV DNN and the oneDNN plan are the CPU's
  else
    inference(r);
  r.add("voc_scoring", "VOC scoring, 5,000 images / 100,000 detections",
        voc_scoring_seconds(config, options.repeats) * 1000, "ms");
  if (options.loader) {
    const double lips = loader_rate(config, options.batches);
    std::string note = std::to_string(config.data.input_size) + " px, batch " +
                       std::to_string(config.train.batch / config.train.subdivisions) + ", " +
                       std::to_string(runtime::resolved_workers(config.data.workers)) + " worker(s)";
    if (const Measurement* t = report.find("train_iteration"))
      note += "; " + num(lips / t->value) + "x the training iteration";
    r.add("loader", "loader, full augmentation", lips, "images/s", note);
    add_loader_stages(r, config, options.batches);
  }
  return report;
}

}  // namespace yolo2::bench
