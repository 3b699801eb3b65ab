// ONNX export and TensorBoard event files against their readers: ONNX Runtime and OpenCV's DNN
// reader run the exported model (raw outputs against yolo2's forward; decode + NMS against
// `yolo2 detect`'s Detector), TensorBoard's own loader reads the event files back (against
// metrics.csv and eval.csv across a resume). ONNX Runtime and TensorBoard are PyPI test references
// in .test-deps/ (scripts/setup.sh); a test that needs one skips, saying so, where it is missing.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>

#include "test_util.hpp"
#include "train_fixtures.hpp"
#include "yolo2/data/augment.hpp"
#include "yolo2/eval/detector.hpp"
#include "yolo2/interop/tensorboard.hpp"
#include "yolo2/io/onnx_export.hpp"
#include "yolo2/train/run.hpp"
#include "yolo2/train/run_folder.hpp"
#include "yolo2/util/plot.hpp"

namespace yolo2 {
namespace {

using testing::TempDir;

// python3 tests/SCRIPT ARGS with the test references on the path; the exit status (77: a reference
// is not installed). The script's output goes to `log`, printed on failure by the caller.
int run_python(const std::string& script, const std::string& args, const std::string& log) {
  const std::string cmd = std::string("PYTHONPATH=") + YOLO2_SOURCE_DIR + "/.test-deps python3 " + YOLO2_SOURCE_DIR +
                          "/tests/" + script + " " + args + " > " + log + " 2>&1";
  return testing::run_status(cmd);
}

void write_floats(const std::string& path, const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kFloat).contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(c.data_ptr<float>()), static_cast<std::streamsize>(c.numel() * 4));
  ASSERT_TRUE(out.good()) << path;
}

nlohmann::json shape_of(const at::Tensor& t) { return nlohmann::json(t.sizes().vec()); }

Config six_class_config(double width) {
  Config c;
  c.data.classes = {"square", "circle", "triangle", "star", "ring", "cross"};
  c.model.width = width;
  c.model.anchors = {1.3221, 1.73145, 3.19275, 4.00944, 5.05587, 8.09892, 9.47112, 4.84053, 11.2364, 10.0071};  // VOC's
  return c;
}

// A network with darknet's initialisation and random batch-norm statistics (a folding mistake
// shows), in evaluation mode.
model::YoloV2 random_model(const Config& c, uint64_t seed) {
  torch::manual_seed(seed);
  model::YoloV2 m(model::network_spec(c.model, static_cast<int>(c.data.classes.size())));
  m->reset_darknet();
  testing::randomize_batchnorm(*m);
  m->eval();
  return m;
}

std::string read_log(const std::string& path) { return testing::read_text(path); }

// The raw outputs of ONNX Runtime (batch norm folded, and kept) equal yolo2's forward within 1e-4 of
// the output's largest magnitude: widths 1 and 0.25, input sizes 64 and 96, batches 1 and 3.
TEST(Onnx, OnnxRuntimeRawOutputsEqualTheForward) {
  TempDir dir;
  nlohmann::json cases = nlohmann::json::array();
  int k = 0;
  for (double width : {1.0, 0.25}) {
    const Config c = six_class_config(width);
    model::YoloV2 m = random_model(c, 11);
    for (int size : {64, 96}) {
      for (bool keep_bn : {false, true}) {
        if (keep_bn && (width == 1.0 || size == 96)) continue;  // kept norms: one network and size is enough
        io::OnnxExportOptions o;
        o.size = size;
        o.fold_bn = !keep_bn;
        const std::string onnx = dir.file("m" + std::to_string(k) + ".onnx");
        const io::OnnxExportSummary s = io::export_onnx(*m, c, onnx, o);
        EXPECT_EQ(s.size, size);
        for (int batch : {1, 3}) {
          const at::Tensor x = torch::rand({batch, 3, size, size});
          at::Tensor y;
          {
            torch::NoGradGuard g;
            y = m->forward(x);
          }
          const std::string in = dir.file("x" + std::to_string(k) + ".bin"),
                            out = dir.file("y" + std::to_string(k) + ".bin");
          write_floats(in, x);
          write_floats(out, y);
          cases.push_back({{"model", onnx},
                           {"input", in},
                           {"input_shape", shape_of(x)},
                           {"expected", out},
                           {"expected_shape", shape_of(y)},
                           {"tolerance", 1e-4},
                           {"label", "width " + std::to_string(width) + " size " + std::to_string(size) + " batch " +
                                         std::to_string(batch) + (keep_bn ? " kept BN" : " folded BN")}});
          ++k;
        }
      }
    }
  }
  testing::write_text(dir.file("cases.json"), cases.dump(1));
  const int rc = run_python("onnx_check.py", "raw " + dir.file("cases.json"), dir.file("log"));
  if (rc == 77) GTEST_SKIP() << read_log(dir.file("log"));
  EXPECT_EQ(rc, 0) << read_log(dir.file("log"));
  std::cout << read_log(dir.file("log"));  // the figures, for the record (ctest -V)
}

// OpenCV 4.6's ONNX reader loads the model (constant reshapes, no Shape op) and gives the same raw
// outputs, at batch 1 and 3.
TEST(Onnx, OpenCvDnnReadsTheModelAndGivesTheSameOutputs) {
  TempDir dir;
  for (double width : {0.25, 1.0}) {
    const Config c = six_class_config(width);
    model::YoloV2 m = random_model(c, 12);
    io::OnnxExportOptions o;
    o.size = 96;
    const std::string onnx = dir.file("m.onnx");
    io::export_onnx(*m, c, onnx, o);
    cv::dnn::Net net = cv::dnn::readNetFromONNX(onnx);
    ASSERT_FALSE(net.empty());
    for (int batch : {1, 3}) {
      const at::Tensor x = torch::rand({batch, 3, 96, 96});
      at::Tensor y;
      {
        torch::NoGradGuard g;
        y = m->forward(x).contiguous();
      }
      const int dims[4] = {batch, 3, 96, 96};
      cv::Mat blob(4, dims, CV_32F);
      std::memcpy(blob.ptr<float>(), x.data_ptr<float>(), static_cast<std::size_t>(x.numel()) * sizeof(float));
      net.setInput(blob);
      const cv::Mat out = net.forward();
      ASSERT_EQ(static_cast<int64_t>(out.total()), y.numel()) << "width " << width << " batch " << batch;
      const at::Tensor got = at::from_blob(const_cast<float*>(out.ptr<float>()), y.sizes(), at::kFloat);
      const double err = (got - y).abs().max().item<double>() / y.abs().max().item<double>();
      EXPECT_LE(err, 1e-4) << "width " << width << " batch " << batch;
    }
  }
}

// Decode and NMS in the graph give `yolo2 detect`'s detections (boxes to 0.01 px, scores to 1e-5)
// on a square image and a letterboxed one, the window input being the image's area of the input.
TEST(Onnx, DecodeAndNmsInTheGraphGiveTheDetectorsDetections) {
  TempDir dir;
  Config c = six_class_config(0.25);
  c.data.input_size = 128;
  c.data.eval_transform = data::EvalTransform::Letterbox;
  model::YoloV2 m = random_model(c, 13);
  eval::DetectOptions d;
  d.score_threshold = 0.05f;  // a random network's scores are about 0.5 / 6: many candidates for NMS
  d.nms_threshold = 0.45f;
  d.max_detections = 12;
  io::OnnxExportOptions o;
  o.decode = true, o.nms = true, o.score_threshold = d.score_threshold, o.iou_threshold = d.nms_threshold;
  io::export_onnx(*m, c, dir.file("m.onnx"), o);
  eval::DetectorOptions dopt;
  dopt.input_size = 128;
  dopt.eval_transform = data::EvalTransform::Letterbox;
  const eval::Detector detector(*m, dopt, c10::Device(c10::kCPU));
  cv::RNG rng(5);
  std::vector<at::Tensor> inputs;
  nlohmann::json images = nlohmann::json::array();
  std::vector<float> windows;
  for (const cv::Size size : {cv::Size(128, 128), cv::Size(200, 120)}) {
    cv::Mat bgr(size, CV_8UC3);
    rng.fill(bgr, cv::RNG::UNIFORM, 0, 255);
    cv::rectangle(bgr, cv::Rect(20, 30, 60, 50), cv::Scalar(40, 200, 90), cv::FILLED);
    // The network input as the Detector makes it: letterbox, RGB, / 255.
    const data::Affine tr = data::eval_affine(bgr.cols, bgr.rows, 128, data::EvalTransform::Letterbox);
    cv::Mat rgb;
    cv::cvtColor(data::warp_image(bgr, tr, 128, false), rgb, cv::COLOR_BGR2RGB);
    inputs.push_back(at::from_blob(rgb.data, {128, 128, 3}, at::kByte).permute({2, 0, 1}).to(at::kFloat).div(255));
    windows.insert(windows.end(), {static_cast<float>(tr.bx), static_cast<float>(tr.by),
                                   static_cast<float>(tr.bx + (bgr.cols - 1) * tr.ax),
                                   static_cast<float>(tr.by + (bgr.rows - 1) * tr.ay)});
    nlohmann::json dets = nlohmann::json::array();
    for (const eval::Detection& det : detector.detect(bgr, d))
      dets.push_back(
          {{"label", det.label}, {"score", det.score}, {"box", {det.box.x1, det.box.y1, det.box.x2, det.box.y2}}});
    images.push_back({{"affine", {tr.ax, tr.bx, tr.ay, tr.by}}, {"detections", dets}});
  }
  const at::Tensor x = at::stack(inputs);
  write_floats(dir.file("x.bin"), x);
  write_floats(dir.file("window.bin"), at::from_blob(windows.data(), {2, 4}, at::kFloat));
  const nlohmann::json job{{"model", dir.file("m.onnx")},        {"input", dir.file("x.bin")},
                           {"input_shape", shape_of(x)},         {"window", dir.file("window.bin")},
                           {"max_detections", d.max_detections}, {"images", images}};
  testing::write_text(dir.file("job.json"), job.dump(1));
  size_t total = 0;
  for (const auto& im : images) total += im["detections"].size();
  ASSERT_GT(total, 10u) << "the test needs detections to compare";
  const int rc = run_python("onnx_check.py", "detect " + dir.file("job.json"), dir.file("log"));
  if (rc == 77) GTEST_SKIP() << read_log(dir.file("log"));
  EXPECT_EQ(rc, 0) << read_log(dir.file("log"));
  std::cout << read_log(dir.file("log"));  // the figures, for the record (ctest -V)
}

TEST(Onnx, RefusesNmsWithoutDecodeAndSizesOffTheGrid) {
  TempDir dir;
  const Config c = six_class_config(0.25);
  model::YoloV2 m = random_model(c, 14);
  io::OnnxExportOptions o;
  o.size = 100;
  EXPECT_NE(testing::error_of([&] { io::export_onnx(*m, c, dir.file("a.onnx"), o); }).find("multiple of 32"),
            std::string::npos);
  o.size = 64, o.nms = true;
  EXPECT_NE(testing::error_of([&] { io::export_onnx(*m, c, dir.file("a.onnx"), o); }).find("--decode"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.file("a.onnx")));
}

// CRC-32C's check value (RFC 3720's "123456789") and TFRecord's mask.
TEST(TensorBoard, RecordChecksumsAreCrc32cMasked) {
  EXPECT_EQ(interop::crc32c("123456789"), 0xE3069283u);
  const uint32_t crc = interop::crc32c("123456789");
  EXPECT_EQ(interop::masked_crc32c("123456789"), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
  // A record: length, its masked CRC, the data, its masked CRC.
  const std::string r = interop::tb_scalar_record(1.5, 7, "train/loss", 0.25f);
  ASSERT_GT(r.size(), 16u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(r[static_cast<std::size_t>(i)]);
  EXPECT_EQ(r.size(), n + 16);
}

// A run interrupted and resumed: TensorBoard's loader reads every event file (checksums checked) and
// finds each metrics.csv value once per step as train/<column>, each eval.csv score as
// eval/<column>, the plots as images, nothing past the interruption's checkpoint written twice.
TEST(TensorBoard, EventFilesEqualTheCsvFilesAcrossAResume) {
  TempDir dir;
  const std::string root = testing::make_dataset(dir, 8, 64, 21);
  Config c = testing::tiny_config(root, dir.file("run"));
  c.data.input_size = 64;
  c.train.batch = 4;
  c.train.max_batches = 10;
  c.train.checkpoint_every = 3;
  c.eval.every = 4;
  train::TrainOptions first;
  first.stop_after = 5;  // saves at 3 and at the stop (5); steps 4-5 were logged before it
  train::run_training(c, first);
  // A branch from the stop copies the event files with metrics.csv and adds its own.
  train::TrainOptions branch;
  branch.resume = dir.file("run/last.ckpt");
  branch.branch = dir.file("branch");
  branch.stop_after = 1;
  branch.evaluate = false;
  train::run_training(Config{}, branch);
  int branch_files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.file("branch")))
    branch_files += train::is_tensorboard_file(e.path().filename().string());
  EXPECT_EQ(branch_files, 2);
  train::TrainOptions rest;
  rest.resume = dir.file("run/last.ckpt");
  train::run_training(Config{}, rest);
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.file("run")))
    files += train::is_tensorboard_file(e.path().filename().string());
  EXPECT_EQ(files, 2);             // one per process
  ::setenv("RESUMED_AT", "5", 1);  // the resume from the stop's checkpoint
  const int rc = run_python("tensorboard_check.py", dir.file("run"), dir.file("log"));
  if (rc == 77) GTEST_SKIP() << read_log(dir.file("log"));
  EXPECT_EQ(rc, 0) << read_log(dir.file("log"));
  std::cout << read_log(dir.file("log"));  // the figures, for the record (ctest -V)
  // --overwrite removes them with yolo2's other files.
  train::TrainOptions again;
  again.overwrite = true;
  again.stop_after = 1;
  again.evaluate = false;
  c.train.tensorboard = false;
  train::run_training(c, again);
  for (const auto& e : std::filesystem::directory_iterator(dir.file("run")))
    EXPECT_FALSE(train::is_tensorboard_file(e.path().filename().string())) << e.path();
}

// A label near the image's right or top edge stays inside the image.
TEST(DrawDetections, LabelsStayInsideTheImage) {
  const cv::Mat white(120, 160, CV_8UC3, cv::Scalar(255, 255, 255));
  eval::Detection det;
  det.label = 0;
  det.score = 0.9f;
  det.box = {140, 0, 159, 30};  // top-right corner: no room above, none to the right
  const cv::Mat drawn = eval::draw_detections(white, {det}, {"aeroplane"});
  const cv::Scalar colour = util::palette_colour(0);
  // The label's filled box: its text "aeroplane 0.90" is wider than the 20 px to the right edge, so
  // the box ends at the right edge, inside the image, at the top.
  int base = 0;
  const double font = std::clamp(std::min(160, 120) / 640.0, 0.3, 2.5);
  const cv::Size ts = cv::getTextSize("aeroplane 0.90", cv::FONT_HERSHEY_SIMPLEX, font, 1, &base);
  ASSERT_LT(ts.width, 160);
  const int left = 160 - (ts.width + 2);
  const cv::Vec3b c3(static_cast<uchar>(colour[0]), static_cast<uchar>(colour[1]), static_cast<uchar>(colour[2]));
  EXPECT_EQ(drawn.at<cv::Vec3b>(1, left), c3) << "the label box starts " << ts.width + 2 << " px from the right";
  EXPECT_EQ(drawn.at<cv::Vec3b>(1, 159), c3);
  EXPECT_EQ(drawn.at<cv::Vec3b>(1, left - 2), cv::Vec3b(255, 255, 255));
}

}  // namespace
}  // namespace yolo2
