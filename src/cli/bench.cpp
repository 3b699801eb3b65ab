// `yolo2 bench`: measured speed of the pieces of training and evaluation, medians over repeats
// after warm-up, printed as a table (and JSON).
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <opencv2/dnn.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include <sys/resource.h>
#include <torch/optim/sgd.h>
#include <unistd.h>

#include <fstream>

#include "verbs.hpp"
#include "yolo2/data/loader.hpp"
#include "yolo2/error.hpp"
#include "yolo2/eval/decode.hpp"
#include "yolo2/eval/voc_ap.hpp"
#include "yolo2/loss/region_loss.hpp"
#include "yolo2/model/darknet_io.hpp"
#include "yolo2/model/yolov2.hpp"
#include "yolo2/util/atomic_file.hpp"
#include "yolo2/util/build_info.hpp"
#include "yolo2/util/rng.hpp"
#include "yolo2/util/runtime.hpp"

namespace yolo2::cli {

namespace {

using Clock = std::chrono::steady_clock;

// Median seconds of `repeats` calls of fn after `warmup` calls.
template <class Fn>
double median_seconds(int warmup, int repeats, Fn fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Row {
  std::string what;
  double value;
  std::string unit;
  std::string note;
};

// Images/s of the training loader (full augmentation) at the configured input size and workers.
double bench_loader(const Config& config, int batches) {
  data::ParseOptions po;
  po.class_names = config.data.classes;
  po.keep_difficult = config.data.train_difficult;
  po.skip_unknown_classes = config.data.skip_unknown_classes;
  auto ds = std::make_shared<const data::VocDataset>(data::load_voc(config.data.train, po));
  data::LoaderOptions lo = data::loader_options(config, true);
  lo.num_batches = batches + 2;
  data::Loader loader(ds, lo);
  for (int i = 0; i < 2; ++i) loader.next();  // warm-up: threads started, caches filled
  const auto t0 = Clock::now();
  int64_t images = 0;
  while (auto b = loader.next()) images += b->images.size(0);
  return static_cast<double>(images) / std::chrono::duration<double>(Clock::now() - t0).count();
}

// This machine's reference: GFLOP/s of one large 3x3 convolution (256 -> 256 channels, 52 x 52,
// batch 8: 25.5 GFLOP forward; yolov2's 3x3 layers look like it), forward and backward (input and
// weight gradients: twice the forward FLOPs).
struct ConvReference {
  double forward = 0, backward = 0, both = 0;  // GFLOP/s
};
ConvReference bench_reference_conv(int repeats, bool channels_last) {
  const auto fmt = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  at::Tensor x = at::rand({8, 256, 52, 52}).contiguous(fmt).requires_grad_(true);
  at::Tensor w = (at::randn({256, 256, 3, 3}) * 0.02).contiguous(fmt).requires_grad_(true);
  const double flop = 2.0 * 8 * 256 * 256 * 9 * 52 * 52 / 1e9;
  at::Tensor y;
  const double tf = median_seconds(1, repeats, [&] {
    at::NoGradGuard g;
    y = at::conv2d(x, w, {}, 1, 1);
  });
  const at::Tensor gy = at::rand_like(y);
  const double tb = median_seconds(1, repeats, [&] {
    at::Tensor out = at::conv2d(x, w, {}, 1, 1);
    x.mutable_grad() = at::Tensor();
    w.mutable_grad() = at::Tensor();
    out.backward(gy);
  });
  // tb timed forward + backward; the backward alone is the difference.
  ConvReference r;
  r.forward = flop / tf;
  r.backward = 2 * flop / std::max(tb - tf, 1e-9);
  r.both = 3 * flop / tb;
  return r;
}

// Peak resident memory since the last reset (VmHWM), MiB; reset writes 5 to clear_refs.
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }
double peak_rss_mib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

// One training iteration as the trainer runs it (forward in training mode, region loss against
// synthetic targets, backward, SGD step with momentum and decay) at the configured mini-batch, in the
// given memory format: images/s, and the median of each phase (CPU: the phases run synchronously).
struct TrainBench {
  double images_per_s = 0;
  double forward_ms = 0, loss_ms = 0, backward_ms = 0, step_ms = 0;
};
TrainBench bench_train_step(const Config& config, int repeats, bool channels_last) {
  model::YoloV2 net(model::yolov2_spec(config.model, static_cast<int>(config.data.classes.size())));
  net->train();
  const auto fmt = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  model::set_weight_memory_format(*net, fmt);
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(1e-4).momentum(config.train.momentum).weight_decay(config.train.decay));
  const int b = config.train.batch / config.train.subdivisions, s = config.data.input_size, m = 6;
  const at::Tensor x = at::rand({b, 3, s, s}).contiguous(fmt);
  util::Rng rng(3);
  at::Tensor boxes = at::zeros({b, m, 4}), labels = at::full({b, m}, -1, at::kLong), counts = at::full({b}, m, at::kLong);
  for (int i = 0; i < b; ++i)
    for (int k = 0; k < m; ++k) {
      const double cx = rng.uniform(0.1, 0.9), cy = rng.uniform(0.1, 0.9), w = rng.uniform(0.05, 0.4), h = rng.uniform(0.05, 0.4);
      boxes[i][k] = at::tensor({cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2}, at::kFloat).clamp(0, 1);
      labels[i][k] = rng.uniform_int(0, static_cast<int64_t>(config.data.classes.size()) - 1);
    }
  const loss::RegionLossOptions lopt = loss::RegionLossOptions::from_config(config);
  std::vector<double> phase[4];
  auto ms_since = [](Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); };
  const double t = median_seconds(1, repeats, [&] {
    auto t0 = Clock::now();
    sgd.zero_grad();
    const at::Tensor raw = net->forward(x);
    phase[0].push_back(ms_since(t0));
    t0 = Clock::now();
    const at::Tensor loss = loss::region_loss(raw, boxes, labels, counts, 1 << 30, config.loss.focal.gamma, lopt).total;
    phase[1].push_back(ms_since(t0));
    t0 = Clock::now();
    loss.backward();
    phase[2].push_back(ms_since(t0));
    t0 = Clock::now();
    sgd.step();
    phase[3].push_back(ms_since(t0));
  });
  auto median = [](std::vector<double> v) {
    v.erase(v.begin());  // the warm-up
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return {b / t, median(phase[0]), median(phase[1]), median(phase[2]), median(phase[3])};
}

}  // namespace

void add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Measure speed: reference convolution, training iteration and memory, forward vs OpenCV DNN, data loader, decode + NMS, VOC scoring");
  auto flags = std::make_shared<ConfigFlags>();
  flags->add(cmd, true);
  auto batches = std::make_shared<int>(20);
  auto repeats = std::make_shared<int>(5);
  auto json = std::make_shared<std::string>();
  auto skip_loader = std::make_shared<bool>(false);
  auto skip_opencv = std::make_shared<bool>(false);
  auto skip_train = std::make_shared<bool>(false);
  auto both_layouts = std::make_shared<bool>(false);
  cmd->add_option("--batches", *batches, "Loader batches measured after warm-up")->capture_default_str();
  cmd->add_option("--repeats", *repeats, "Timed repeats per measurement (median)")->capture_default_str();
  cmd->add_option("--json", *json, "Write the figures as JSON to this file");
  cmd->add_flag("--no-loader", *skip_loader, "Skip the loader (needs the config's training data)");
  cmd->add_flag("--no-opencv", *skip_opencv, "Skip the OpenCV DNN comparison");
  cmd->add_flag("--no-train", *skip_train, "Skip the training iteration");
  cmd->add_flag("--both-layouts", *both_layouts, "Also measure the reference convolution and the training iteration in the other memory format (NCHW / channels-last NHWC) than runtime.channels_last");
  cmd->callback([=] {
    const Config config = flags->load();
    const int threads = util::setup_runtime(config.runtime);
    const int s = config.data.input_size;
    std::vector<Row> rows;
    auto pct = [](double v, double ref) { return std::to_string(static_cast<int>(std::lround(100 * v / ref))) + "%"; };
    auto num = [](double v) { return std::to_string(v).substr(0, std::to_string(v).find('.') + 2); };
    auto ratio = [](double v) { return std::to_string(v).substr(0, std::to_string(v).find('.') + 3) + "x"; };

    // The machine's reference convolution, then the training iteration (its peak memory measured alone).
    const ConvReference ref = bench_reference_conv(*repeats, false);
    rows.push_back({"reference 3x3 conv forward (256ch 52x52 b8 NCHW)", ref.forward, "GFLOP/s", "LibTorch/oneDNN"});
    rows.push_back({"reference 3x3 conv backward", ref.backward, "GFLOP/s", "input + weight gradients"});
    rows.push_back({"reference 3x3 conv forward + backward", ref.both, "GFLOP/s", ""});
    double gflop = 0;
    {
      model::YoloV2 probe(model::yolov2_spec(config.model, static_cast<int>(config.data.classes.size())));
      for (const auto& r : model::layer_table(probe->spec(), s, s)) gflop += r.bflops;
    }
    const int mini = config.train.batch / config.train.subdivisions;
    if (!*skip_train) {
      // In the layout the trainer uses (runtime.channels_last); --both-layouts adds the other one.
      const bool cl = config.runtime.channels_last;
      const std::string layout = cl ? "NHWC" : "NCHW";
      auto train_rows = [&](bool channels_last, const std::string& name) {
        reset_peak_rss();
        const TrainBench tb = bench_train_step(config, std::max(3, *repeats / 2), channels_last);
        const double rss = peak_rss_mib();
        const double g = 3 * gflop * tb.images_per_s;
        rows.push_back({"training iteration, " + name, tb.images_per_s, "images/s",
                        num(g) + " GFLOP/s = " + pct(g, ref.both) + " of reference fwd+bwd; batch " + std::to_string(mini) +
                            "; fwd, loss, bwd, SGD step"});
        const double all = tb.forward_ms + tb.loss_ms + tb.backward_ms + tb.step_ms;
        rows.push_back({"  phases: forward / region loss / backward / step", all, "ms",
                        num(tb.forward_ms) + " / " + num(tb.loss_ms) + " / " + num(tb.backward_ms) + " / " + num(tb.step_ms) +
                            " ms (" + pct(tb.forward_ms, all) + " / " + pct(tb.loss_ms, all) + " / " +
                            pct(tb.backward_ms, all) + " / " + pct(tb.step_ms, all) + ")"});
        rows.push_back({"  peak resident memory", rss, "MiB", "process VmHWM during the iterations"});
        return tb.images_per_s;
      };
      const double ips = train_rows(cl, layout);
      if (*both_layouts) {
        // The reference stays the NCHW convolution; this is the same convolution in NHWC.
        const ConvReference nhwc = bench_reference_conv(*repeats, true);
        rows.push_back({"reference conv fwd+bwd, NHWC", nhwc.both, "GFLOP/s", pct(nhwc.both, ref.both) + " of the NCHW reference"});
        const std::size_t at_row = rows.size();
        const double ips_other = train_rows(!cl, cl ? "NCHW" : "NHWC");
        rows[at_row].note = pct(ips_other, ips) + " of " + layout + "; " + rows[at_row].note;
      }
    }

    // Forward (batch norm folded), batch 1 and 8, against OpenCV DNN on the exported network.
    model::YoloV2 net(model::yolov2_spec(config.model, static_cast<int>(config.data.classes.size())));
    net->eval();
    const model::FusedYoloV2 fused(*net);
    const at::Tensor x1 = at::rand({1, 3, s, s}), x8 = at::rand({8, 3, s, s});
    const std::string how = fused.uses_onednn(x1) ? "oneDNN plan" : "LibTorch ops";
    const double t1 = median_seconds(2, *repeats, [&] { fused.forward(x1); });
    const double t8 = median_seconds(1, std::max(3, *repeats / 2), [&] { fused.forward(x8); });
    rows.push_back({"forward batch 1 (latency), " + how, t1 * 1000, "ms", num(gflop / t1) + " GFLOP/s = " + pct(gflop / t1, ref.forward) + " of reference fwd"});
    rows.push_back({"forward batch 8 (throughput), " + how, 8 / t8, "images/s", num(8 * gflop / t8) + " GFLOP/s = " + pct(8 * gflop / t8, ref.forward) + " of reference fwd"});
    if (fused.uses_onednn(x1)) {  // what the plan buys over LibTorch's op-by-op forward
      model::FusedYoloV2 ops(*net);
      ops.set_backend(model::FusedYoloV2::Backend::LibTorch);
      const double o1 = median_seconds(2, *repeats, [&] { ops.forward(x1); });
      const double o8 = median_seconds(1, std::max(3, *repeats / 2), [&] { ops.forward(x8); });
      rows.push_back({"forward batch 1, LibTorch ops", o1 * 1000, "ms", num(gflop / o1) + " GFLOP/s; plan " + ratio(o1 / t1) + " faster"});
      rows.push_back({"forward batch 8, LibTorch ops", 8 / o8, "images/s", num(8 * gflop / o8) + " GFLOP/s; plan " + ratio(o8 / t8) + " faster"});
    }
    if (!*skip_opencv) {
      const auto dir = std::filesystem::temp_directory_path() / ("yolo2-bench-" + std::to_string(::getpid()));
      std::filesystem::create_directories(dir);
      model::export_darknet(*net, config, (dir / "net").string(), 0);
      cv::dnn::Net cvnet = cv::dnn::readNetFromDarknet((dir / "net.cfg").string(), (dir / "net.weights").string());
      std::filesystem::remove_all(dir);
      cvnet.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
      cv::setNumThreads(threads);  // give OpenCV DNN the same cores for the comparison
      cv::Mat img(s, s, CV_8UC3);
      cv::randu(img, 0, 255);
      const cv::Mat blob1 = cv::dnn::blobFromImage(img, 1 / 255.0, cv::Size(s, s), cv::Scalar(), true, false);
      const cv::Mat blob8 = cv::dnn::blobFromImages(std::vector<cv::Mat>(8, img), 1 / 255.0, cv::Size(s, s), cv::Scalar(), true, false);
      const double c1 = median_seconds(2, *repeats, [&] { cvnet.setInput(blob1); cvnet.forward(); });
      const double c8 = median_seconds(1, std::max(3, *repeats / 2), [&] { cvnet.setInput(blob8); cvnet.forward(); });
      cv::setNumThreads(1);
      rows.push_back({"OpenCV DNN forward batch 1", c1 * 1000, "ms", ratio(c1 / t1) + " slower than " + how});
      rows.push_back({"OpenCV DNN forward batch 8", 8 / c8, "images/s", ratio(c8 / t8) + " slower than " + how});
    }

    // Decode + per-class NMS of one image's output, at the mAP threshold.
    {
      const at::Tensor raw = fused.forward(x1);
      eval::DetectOptions dopt;
      dopt.score_threshold = static_cast<float>(config.eval.conf_thresh);
      dopt.nms_threshold = static_cast<float>(config.eval.nms);
      dopt.max_detections = config.eval.max_detections;
      const double td = median_seconds(3, *repeats * 4, [&] {
        const auto d = eval::decode_region(raw, net->spec().anchors, net->spec().num_classes);
        eval::detect_image(d, 0, data::Affine{1, 0, 1, 0}, s, s, s, s, 0, dopt);
      });
      rows.push_back({"decode + NMS per image", td * 1000, "ms", "score >= " + std::to_string(config.eval.conf_thresh)});
    }

    // VOC scoring of 5,000 images and 100,000 detections (synthetic, 20 classes).
    {
      util::Rng rng(7);
      const int images = 5000, classes = static_cast<int>(config.data.classes.size());
      std::vector<std::vector<eval::GroundTruthBox>> gt(images);
      std::vector<eval::Detection> dets;
      for (int i = 0; i < images; ++i)
        for (int k = 0; k < 3; ++k) {
          const float x = static_cast<float>(rng.uniform(0, 400)), y = static_cast<float>(rng.uniform(0, 300));
          gt[static_cast<std::size_t>(i)].push_back({static_cast<int>(rng.uniform_int(0, classes - 1)),
                                                     {x, y, x + 60, y + 60}, rng.bernoulli(0.1)});
        }
      for (int d = 0; d < 100000; ++d) {
        const auto& g = gt[static_cast<std::size_t>(rng.uniform_int(0, images - 1))];
        const auto& t = g[static_cast<std::size_t>(rng.uniform_int(0, 2))];
        const float j = static_cast<float>(rng.uniform(-15, 15));
        eval::Detection det;
        det.image = static_cast<int>(&g - gt.data());
        det.label = rng.bernoulli(0.7) ? t.label : static_cast<int>(rng.uniform_int(0, classes - 1));
        det.score = static_cast<float>(rng.uniform());
        det.box = {t.box.x1 + j, t.box.y1 - j, t.box.x2 + j, t.box.y2 + j};
        dets.push_back(det);
      }
      const double tv = median_seconds(1, *repeats, [&] { eval::evaluate_voc(gt, dets, config.data.classes); });
      rows.push_back({"VOC scoring, 5,000 images / 100,000 detections", tv * 1000, "ms", ""});
    }

    if (!*skip_loader) {
      const double lips = bench_loader(config, *batches);
      std::string note = std::to_string(config.data.input_size) + " px, batch " + std::to_string(mini) + ", " +
                         std::to_string(config.data.workers) + " worker(s)";
      const auto train_row = std::find_if(rows.begin(), rows.end(), [](const Row& r) { return r.what.rfind("training iteration, ", 0) == 0; });
      if (train_row != rows.end()) note += "; " + num(lips / train_row->value) + "x the training iteration";
      rows.push_back({"loader, full augmentation", lips, "images/s", note});
    }

    std::cout << "\nyolo2 bench: " << config.source << ", input " << s << " px, width " << config.model.width << ", "
              << threads << " thread(s), " << std::fixed << std::setprecision(3) << gflop << " GFLOP per forward image\n";
    std::cout << std::string(96, '-') << "\n";
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& r : rows) {
      std::cout << std::left << std::setw(48) << r.what << std::right << std::setw(12) << std::setprecision(2) << r.value
                << " " << std::left << std::setw(9) << r.unit << r.note << "\n";
      j[r.what] = {{"value", r.value}, {"unit", r.unit}, {"note", r.note}};
    }
    std::cout << std::string(96, '-') << std::right << "\n";
    j["build"] = nlohmann::ordered_json::parse(util::to_json(util::build_info()));
    if (!json->empty()) util::write_file_atomic(*json, j.dump(2) + "\n");
  });
}

}  // namespace yolo2::cli
