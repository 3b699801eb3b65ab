// The YOLOv2 network against darknet's definition: parameter count, shapes, the reorg index
// formula, FLOPs, darknet weights in and out, and parity with OpenCV's darknet importer.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/utils.h>
#include <array>
#include <opencv2/dnn.hpp>

#include <cstring>
#include <fstream>
#include <set>

#include "test_util.hpp"
#include "train_fixtures.hpp"
#include "yolo2/config.hpp"
#include "yolo2/error.hpp"
#include "yolo2/eval/decode.hpp"
#include "yolo2/io/darknet.hpp"
#include "yolo2/model/layers.hpp"
#include "yolo2/model/yolov2.hpp"

using namespace yolo2;
using yolo2::testing::bit_identical;
using yolo2::testing::randomize_batchnorm;

namespace {

model::YoloV2 make_model(double width, int classes = 20) {
  ModelOptions mc;
  mc.width = width;
  mc.anchors = voc_anchors();
  return model::YoloV2(model::yolov2_spec(mc, classes));
}

std::string read_bytes(const std::string& path) { return yolo2::testing::read_text(path); }

}  // namespace

TEST(Model, FullWidthHasDarknetParameterCount) {
  auto m = make_model(1.0);
  // yolov2-reference.md §1.4: conv weights + BN beta/gamma + final bias.
  EXPECT_EQ(model::parameter_count(*m), 50655389);
  EXPECT_EQ(io::darknet_weight_floats(m->spec()), 50676061);
  EXPECT_EQ(io::darknet_weight_floats(m->spec(), 23), 19831776);  // darknet19_448.conv.23
}

TEST(Model, ConvolutionsStartFromDarknetsUniformInitialisation) {
  torch::manual_seed(3);
  auto m = make_model(1.0);
  for (std::size_t k = 0; k < m->convs().size(); ++k) {
    const at::Tensor w = m->convs()[k]->weight.detach().to(at::kDouble);
    const double scale = std::sqrt(2.0 / static_cast<double>(w.size(1) * w.size(2) * w.size(3)));
    // scale * U(-1, 1): inside [-scale, scale], filling it (not scale * N(0, 1), which exceeds
    // it in ~32 % of the draws), with standard deviation scale / sqrt(3).
    EXPECT_LE(w.abs().max().item<double>(), scale * (1 + 1e-6)) << "conv " << k;  // float bounds
    if (w.numel() < 20000) continue;  // the statistics below need many draws
    EXPECT_GT(w.abs().max().item<double>(), 0.999 * scale) << "conv " << k;
    EXPECT_NEAR(w.std().item<double>() / scale, 1 / std::sqrt(3.0), 0.01) << "conv " << k;
    EXPECT_NEAR(w.mean().item<double>() / scale, 0.0, 0.01) << "conv " << k;
    // Uniform: each quarter of [-scale, scale] holds a quarter of the weights.
    const double inner = (w.abs() < scale / 2).to(at::kDouble).mean().item<double>();
    EXPECT_NEAR(inner, 0.5, 0.01) << "conv " << k;
  }
  // The final (linear) convolution keeps its bias at 0 (no objectness prior in this spec).
  EXPECT_EQ(m->convs().back()->bias.abs().max().item<double>(), 0.0);
}

TEST(Model, LayerTableMatchesDarknetFlops) {
  auto m = make_model(1.0);
  const auto rows = model::infer_shapes(m->spec(), 416, 416);
  ASSERT_EQ(rows.size(), 31u);
  double total = 0;
  for (const auto& r : rows) total += r.bflops;
  EXPECT_NEAR(total, 29.360, 0.0005);
  EXPECT_NEAR(rows[29].bflops, 3.987, 0.0005);
  EXPECT_EQ(rows[28].out_c, 1280);
  EXPECT_EQ(rows[27].out_c, 256);
  EXPECT_EQ(rows[30].out_c, 125);
  EXPECT_EQ(rows[30].out_h, 13);
  const auto r608 = model::infer_shapes(m->spec(), 608, 608);
  total = 0;
  for (const auto& r : r608) total += r.bflops;
  EXPECT_NEAR(total, 62.72, 0.005);
}

TEST(Model, OutputShapesAtSeveralSizes) {
  auto m = make_model(0.125, 7);
  m->eval();
  torch::NoGradGuard g;
  for (auto [h, w] : std::vector<std::pair<int, int>>{{64, 64}, {320, 320}, {416, 416}, {96, 160}}) {
    const at::Tensor y = m->forward(at::rand({2, 3, h, w}));
    EXPECT_EQ(y.sizes(), (at::IntArrayRef{2, 5 * 12, h / 32, w / 32})) << h << "x" << w;
  }
  EXPECT_THROW(m->forward(at::rand({1, 3, 100, 96})), c10::Error);
}

TEST(Model, ReorgMatchesDarknetIndexFormula) {
  // darknet blas.c reorg_cpu(x, w, h, c, batch, stride=2, forward=0, out), called with the input
  // sizes: out[in_index] = x[out_index], computed here with plain loops.
  const int b = 2, c = 8, h = 4, w = 6, stride = 2;
  const at::Tensor x = at::arange(b * c * h * w, at::kFloat).view({b, c, h, w});
  std::vector<float> expect(static_cast<std::size_t>(b * c * h * w));
  const float* xp = x.data_ptr<float>();
  const int out_c = c / (stride * stride);
  for (int bb = 0; bb < b; ++bb)
    for (int k = 0; k < c; ++k)
      for (int j = 0; j < h; ++j)
        for (int i = 0; i < w; ++i) {
          const int in_index = i + w * (j + h * (k + c * bb));
          const int c2 = k % out_c, offset = k / out_c;
          const int w2 = i * stride + offset % stride, h2 = j * stride + offset / stride;
          const int out_index = w2 + w * stride * (h2 + h * stride * (c2 + out_c * bb));
          expect[static_cast<std::size_t>(in_index)] = xp[out_index];
        }
  const at::Tensor y = model::reorg_darknet(x).contiguous();
  ASSERT_EQ(y.sizes(), (at::IntArrayRef{b, 4 * c, h / 2, w / 2}));
  for (std::size_t i = 0; i < expect.size(); ++i) ASSERT_EQ(y.data_ptr<float>()[i], expect[i]) << i;
  // And it is not a clean space-to-depth (the quirk matters for darknet-trained weights).
  EXPECT_FALSE(at::equal(y, at::pixel_unshuffle(x, 2)));
  // A channels-last input (the training network's layout) gives the same values, in channels-last.
  const at::Tensor y_cl = model::reorg_darknet(x.contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(y_cl.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(at::equal(y_cl, y));
}

TEST(Model, FusedInferenceEqualsEvalForward) {
  torch::manual_seed(3);
  auto m = make_model(0.25, 5);
  randomize_batchnorm(*m);
  m->eval();
  const at::Tensor x = at::rand({2, 3, 128, 96});
  at::Tensor ref;
  {
    torch::NoGradGuard g;
    ref = m->forward(x);
  }
  const model::FusedYoloV2 fused(*m);
  const at::Tensor y = fused.forward(x);
  EXPECT_LT((y - ref).abs().max().item<float>(), 1e-4);
}

// The oneDNN plan (blocked layouts, pre-reordered weights, leaky ReLU as a post-op, darknet's reorg
// between two reorders) against LibTorch's op-by-op forward of the same folded network.
TEST(Model, OneDnnPlanEqualsLibTorchOps) {
  if (!model::onednn_available()) GTEST_SKIP() << "built without oneDNN (libdnnl-dev)";
  torch::manual_seed(4);
  for (const double width : {0.25, 1.0}) {
    auto m = make_model(width, 7);
    randomize_batchnorm(*m);
    m->eval();
    model::FusedYoloV2 onednn(*m), ops(*m);
    ops.set_backend(model::FusedYoloV2::Backend::LibTorch);
    const at::Tensor x = at::rand({2, 3, 96, 64});
    ASSERT_TRUE(onednn.uses_onednn(x));
    ASSERT_FALSE(ops.uses_onednn(x));
    const at::Tensor a = onednn.forward(x), b = ops.forward(x);
    ASSERT_EQ(a.sizes(), b.sizes());
    EXPECT_LT((a - b).abs().max().item<float>(), 1e-4f * std::max(1.0f, b.abs().max().item<float>()))
        << "width " << width;
  }
}

// Evaluation during a channels-last run (on a GPU) puts the folded weights in NHWC: the same output
// as the NCHW network, from the LibTorch path (the oneDNN plan reads NCHW and is left out); a copy
// made before the change keeps its own layout and plan.
TEST(Model, FusedChannelsLastEqualsNchw) {
  torch::manual_seed(6);
  auto m = make_model(0.25, 4);
  randomize_batchnorm(*m);
  m->eval();
  const model::FusedYoloV2 nchw(*m);
  model::FusedYoloV2 nhwc = nchw;
  nhwc.set_memory_format(at::MemoryFormat::ChannelsLast);
  const at::Tensor x = at::rand({2, 3, 96, 64});
  const at::Tensor xl = x.contiguous(at::MemoryFormat::ChannelsLast);
  EXPECT_FALSE(nhwc.uses_onednn(xl));
  EXPECT_EQ(nchw.uses_onednn(x), model::onednn_available()) << "the copy kept its layout";
  const at::Tensor a = nchw.forward(x), b = nhwc.forward(xl);
  ASSERT_EQ(a.sizes(), b.sizes());
  EXPECT_TRUE(b.is_contiguous(at::MemoryFormat::ChannelsLast)) << "ran in NHWC";
  EXPECT_LT((a - b).abs().max().item<float>(), 1e-4f * std::max(1.0f, a.abs().max().item<float>()));
}

// Plans are compiled per input shape and evicted beyond a few: every call must still answer for its
// own shape (and a plan's output tensor must not be overwritten by the next call).
TEST(Model, OneDnnPlanCacheServesEachShape) {
  torch::manual_seed(5);
  auto m = make_model(0.25, 3);
  randomize_batchnorm(*m);
  m->eval();
  model::FusedYoloV2 fused(*m), ops(*m);
  ops.set_backend(model::FusedYoloV2::Backend::LibTorch);
  std::vector<at::Tensor> inputs, outputs;
  for (const auto& [b, h, w] : std::vector<std::array<int64_t, 3>>{
           {1, 64, 64}, {2, 64, 64}, {1, 96, 64}, {1, 64, 128}, {3, 32, 32}, {1, 64, 64}, {2, 64, 64}}) {
    inputs.push_back(at::rand({b, 3, h, w}));
    outputs.push_back(fused.forward(inputs.back()));
  }
  for (std::size_t i = 0; i < inputs.size(); ++i)
    EXPECT_LT((outputs[i] - ops.forward(inputs[i])).abs().max().item<float>(), 1e-4f) << "call " << i;
}

TEST(DarknetWeights, RoundTripIsBitIdentical) {
  yolo2::testing::TempDir dir;
  torch::manual_seed(1);
  auto a = make_model(0.25, 6);
  randomize_batchnorm(*a);
  io::save_darknet_weights(*a, dir.file("a.weights"), 123456789012ULL);
  auto b = make_model(0.25, 6);
  const auto r = io::load_darknet_weights(*b, dir.file("a.weights"), false);
  EXPECT_EQ(r.header.minor, 2);
  EXPECT_EQ(r.header.seen, 123456789012ULL);
  EXPECT_EQ(r.conv_layers_loaded, 23);
  EXPECT_TRUE(bit_identical(*a, *b));
  // v0.2 header: 20 bytes then the floats.
  EXPECT_EQ(std::filesystem::file_size(dir.file("a.weights")),
            20u + 4u * static_cast<std::uint64_t>(io::darknet_weight_floats(a->spec())));
}

TEST(DarknetWeights, ReadsVersion01HeaderWith32BitSeen) {
  yolo2::testing::TempDir dir;
  torch::manual_seed(2);
  auto a = make_model(0.125, 3);
  randomize_batchnorm(*a);
  io::save_darknet_weights(*a, dir.file("v2.weights"), 77);
  // Rewrite as v0.1: minor 1, 4-byte seen.
  const std::string v2 = read_bytes(dir.file("v2.weights"));
  std::string v1 = v2.substr(0, 12);
  v1[4] = 1;
  const int32_t seen = 640;
  v1.append(reinterpret_cast<const char*>(&seen), 4);
  v1.append(v2.substr(20));
  yolo2::testing::write_text(dir.file("v1.weights"), v1);
  auto b = make_model(0.125, 3);
  const auto r = io::load_darknet_weights(*b, dir.file("v1.weights"), false);
  EXPECT_EQ(r.header.minor, 1);
  EXPECT_EQ(r.header.header_bytes(), 16);
  EXPECT_EQ(r.header.seen, 640u);
  EXPECT_TRUE(bit_identical(*a, *b));
}

TEST(DarknetWeights, TruncatedAndOversizedFilesAreErrorsAndLoadNothing) {
  yolo2::testing::TempDir dir;
  auto a = make_model(0.125, 3);
  io::save_darknet_weights(*a, dir.file("full.weights"), 0);
  const std::string full = read_bytes(dir.file("full.weights"));
  const int64_t expected = io::darknet_weight_floats(a->spec());

  yolo2::testing::write_text(dir.file("short.weights"), full.substr(0, full.size() - 4 * 100));
  auto b = make_model(0.125, 3);
  auto before = make_model(0.125, 3);
  {
    torch::NoGradGuard g;
    for (auto& kv : before->named_parameters()) kv.value().copy_(b->named_parameters()[kv.key()]);
  }
  try {
    io::load_darknet_weights(*b, dir.file("short.weights"), false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("expected " + std::to_string(expected) + " floats"), std::string::npos) << msg;
    EXPECT_NE(msg.find("found " + std::to_string(expected - 100)), std::string::npos) << msg;
    EXPECT_NE(msg.find("layer 30"), std::string::npos) << msg;  // the final conv ran out
  }
  // Nothing half-loaded.
  for (const auto& kv : before->named_parameters()) EXPECT_TRUE(at::equal(kv.value(), b->named_parameters()[kv.key()]));

  yolo2::testing::write_text(dir.file("long.weights"), full + std::string(8, '\0'));
  try {
    io::load_darknet_weights(*b, dir.file("long.weights"), false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 left over"), std::string::npos) << e.what();
  }
  // A prefix must end at a layer boundary, even when prefixes are allowed.
  EXPECT_THROW(io::load_darknet_weights(*b, dir.file("short.weights"), true), Error);
}

TEST(DarknetWeights, PrefixFileInitialisesTheBackboneOnly) {
  yolo2::testing::TempDir dir;
  torch::manual_seed(4);
  auto a = make_model(0.125, 3);
  randomize_batchnorm(*a);
  io::save_darknet_weights(*a, dir.file("conv.23"), 0, 23);
  EXPECT_EQ(std::filesystem::file_size(dir.file("conv.23")),
            20u + 4u * static_cast<std::uint64_t>(io::darknet_weight_floats(a->spec(), 23)));
  torch::manual_seed(5);
  auto b = make_model(0.125, 3);
  const at::Tensor head_before = b->convs()[20]->weight.clone();
  const auto r = io::load_darknet_weights(*b, dir.file("conv.23"), true);
  EXPECT_EQ(r.conv_layers_loaded, 18);
  for (std::size_t k = 0; k < 18; ++k) EXPECT_TRUE(at::equal(a->convs()[k]->weight, b->convs()[k]->weight)) << k;
  EXPECT_TRUE(at::equal(b->convs()[20]->weight, head_before));
  // Without allow_prefix, a prefix file is too short for the network.
  EXPECT_THROW(io::load_darknet_weights(*b, dir.file("conv.23"), false), Error);
}

// OpenCV's darknet importer is an independent implementation of the cfg/weights format, the
// reorg, batch norm and the region layer: equal outputs prove all of them at once.
class OpenCvParity : public ::testing::TestWithParam<double> {};

TEST_P(OpenCvParity, DecodedRegionOutputsAgree) {
  const double width = GetParam();
  yolo2::testing::TempDir dir;
  torch::manual_seed(11);
  Config c = default_config();
  c.model.width = width;
  auto m = model::YoloV2(model::yolov2_spec(c.model, 20));
  randomize_batchnorm(*m);
  {
    // Scale the last conv so logits and box sizes are in a realistic range (boxes within the
    // image, a softmax that is not degenerate).
    torch::NoGradGuard g;
    m->convs().back()->weight.mul_(0.1);
    m->convs().back()->bias.uniform_(-0.5, 0.5);
  }
  m->eval();
  // OpenCV's region layer zeroes class scores below `thresh`; keep them all.
  c.loss.thresh = 0.0;
  io::export_darknet(*m, c, dir.file("net"), 0);
  cv::dnn::Net net = cv::dnn::readNetFromDarknet(dir.file("net.cfg"), dir.file("net.weights"));
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);

  const int size = 416;
  cv::Mat image(size, size, CV_8UC3);
  cv::randu(image, 0, 255);
  const cv::Mat blob = cv::dnn::blobFromImage(image, 1 / 255.0, cv::Size(size, size), cv::Scalar(), true, false);
  net.setInput(blob);
  std::vector<cv::Mat> outs;
  net.forward(outs, std::vector<cv::String>{"conv_30", "detection_out"});
  const cv::Mat& raw_cv = outs[0];  // [1, 125, 13, 13]
  const cv::Mat& out = outs[1];     // [H*W*A, 5+C]: x, y, w, h, objectness, objectness*class prob

  const at::Tensor x = at::from_blob(const_cast<float*>(blob.ptr<float>()), {1, 3, size, size}, at::kFloat).clone();
  const model::FusedYoloV2 fused(*m);
  const at::Tensor raw = fused.forward(x);
  const at::Tensor raw_theirs = at::from_blob(const_cast<float*>(raw_cv.ptr<float>()), raw.sizes(), at::kFloat);
  const float raw_err = (raw - raw_theirs).abs().max().item<float>();

  const auto d = eval::decode_region(raw, c.model.anchors, 20);
  const at::Tensor ours =
      at::cat({d.boxes[0], d.objectness[0].unsqueeze(1), d.objectness[0].unsqueeze(1) * d.class_probs[0]}, 1)
          .contiguous();
  ASSERT_EQ(out.rows, ours.size(0));
  ASSERT_EQ(out.cols, ours.size(1));
  const at::Tensor theirs = at::from_blob(const_cast<float*>(out.ptr<float>()), {out.rows, out.cols}, at::kFloat);
  const float box_err = (ours.narrow(1, 0, 5) - theirs.narrow(1, 0, 5)).abs().max().item<float>();
  // OpenCV always runs its own NMS (threshold 0.4) inside the region layer and zeroes the class
  // scores it suppresses: compare the scores it kept.
  const at::Tensor kept = theirs.narrow(1, 5, 20) > 0;
  const float cls_err = ((ours.narrow(1, 5, 20) - theirs.narrow(1, 5, 20)).abs() * kept).max().item<float>();
  std::cout << "OpenCV parity (width " << width << "): max abs error raw " << raw_err << ", boxes+objectness "
            << box_err << ", class scores " << cls_err << " (" << kept.sum().item<int64_t>() << " compared)\n";
  // The raw logits differ by float summation order over up to 11,520-term dot products; the
  // decoded outputs (what the issue bounds) are within 1e-4.
  EXPECT_LT(raw_err, 1e-3);
  EXPECT_LT(box_err, 1e-4);
  EXPECT_LT(cls_err, 1e-4);
  // The comparison is not vacuous: outputs vary, boxes are image-sized, many scores survive.
  EXPECT_GT(theirs.select(1, 4).std().item<float>(), 1e-2);
  EXPECT_LT(theirs.select(1, 2).max().item<float>(), 2.0f);
  EXPECT_GT(kept.sum().item<int64_t>(), 1000);
}

INSTANTIATE_TEST_SUITE_P(Widths, OpenCvParity, ::testing::Values(1.0, 0.25));

// One row per layer type (model/layers.cpp): distinct names and darknet sections; the oneDNN plan
// builds the detector's layers, not the classifier's average pool, and the fused network says so.
TEST(LayerKinds, EveryTypeHasOneRowAndThePlanCoversTheDetector) {
  using T = model::LayerSpec::Type;
  std::set<std::string> names, sections;
  for (T t : {T::Conv, T::MaxPool, T::Route, T::Reorg, T::AvgPool}) {
    const model::LayerKind& k = model::layer_kind(t);
    EXPECT_EQ(k.type, t);
    names.insert(k.name);
    sections.insert(k.section);
    EXPECT_EQ(k.run == nullptr, t == T::Conv) << k.name;
  }
  EXPECT_EQ(names.size(), 5u);
  EXPECT_EQ(sections.size(), 5u);
  ModelOptions mc;
  mc.width = 0.125;
  mc.anchors = voc_anchors();
  EXPECT_TRUE(model::planned_by_onednn(model::network_spec(mc, 4)));
  mc.head = Head::Classifier;
  EXPECT_FALSE(model::planned_by_onednn(model::network_spec(mc, 4)));
}
