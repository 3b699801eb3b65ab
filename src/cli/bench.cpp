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

#include <unistd.h>

#include "verbs.hpp"
#include "yolo2/data/loader.hpp"
#include "yolo2/error.hpp"
#include "yolo2/eval/decode.hpp"
#include "yolo2/eval/voc_ap.hpp"
#include "yolo2/model/darknet_io.hpp"
#include "yolo2/model/yolov2.hpp"
#include "yolo2/util/atomic_file.hpp"
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

}  // namespace

void add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Measure speed: forward vs OpenCV DNN, data loader, decode + NMS, VOC scoring");
  auto flags = std::make_shared<ConfigFlags>();
  flags->add(cmd, true);
  auto batches = std::make_shared<int>(20);
  auto repeats = std::make_shared<int>(5);
  auto json = std::make_shared<std::string>();
  auto skip_loader = std::make_shared<bool>(false);
  auto skip_opencv = std::make_shared<bool>(false);
  cmd->add_option("--batches", *batches, "Loader batches measured after warm-up")->capture_default_str();
  cmd->add_option("--repeats", *repeats, "Timed repeats per measurement (median)")->capture_default_str();
  cmd->add_option("--json", *json, "Write the figures as JSON to this file");
  cmd->add_flag("--no-loader", *skip_loader, "Skip the loader (needs the config's training data)");
  cmd->add_flag("--no-opencv", *skip_opencv, "Skip the OpenCV DNN comparison");
  cmd->callback([=] {
    const Config config = flags->load();
    const int threads = util::setup_runtime(config.runtime);
    const int s = config.data.input_size;
    std::vector<Row> rows;

    // Forward (batch norm folded), batch 1 and 8, against OpenCV DNN on the exported network.
    model::YoloV2 net(model::yolov2_spec(config.model, static_cast<int>(config.data.classes.size())));
    net->eval();
    const model::FusedYoloV2 fused(*net);
    double gflop = 0;
    for (const auto& r : model::layer_table(net->spec(), s, s)) gflop += r.bflops;
    const at::Tensor x1 = at::rand({1, 3, s, s}), x8 = at::rand({8, 3, s, s});
    const double t1 = median_seconds(2, *repeats, [&] { fused.forward(x1); });
    const double t8 = median_seconds(1, std::max(3, *repeats / 2), [&] { fused.forward(x8); });
    rows.push_back({"forward batch 1 (latency)", t1 * 1000, "ms", std::to_string(gflop / t1).substr(0, 6) + " GFLOP/s"});
    rows.push_back({"forward batch 8 (throughput)", 8 / t8, "images/s", std::to_string(8 * gflop / t8).substr(0, 6) + " GFLOP/s"});
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
      rows.push_back({"OpenCV DNN forward batch 1", c1 * 1000, "ms", "ratio " + std::to_string(c1 / t1).substr(0, 5) + "x slower"});
      rows.push_back({"OpenCV DNN forward batch 8", 8 / c8, "images/s", "ratio " + std::to_string(c8 / t8).substr(0, 5) + "x slower"});
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
      const int bs = config.train.batch / config.train.subdivisions;
      rows.push_back({"loader, full augmentation", bench_loader(config, *batches), "images/s",
                      std::to_string(config.data.input_size) + " px, batch " + std::to_string(bs) + ", " +
                          std::to_string(config.data.workers) + " worker(s)"});
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
    if (!json->empty()) util::write_file_atomic(*json, j.dump(2) + "\n");
  });
}

}  // namespace yolo2::cli
