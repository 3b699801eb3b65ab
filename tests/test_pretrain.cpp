// `yolo2 pretrain`: the ImageFolder reader, the generated classification set, the Darknet19
// classifier and its darknet export (OpenCV's DNN predicts the same classes), the detector prefix,
// the poly schedule, and a pretraining run that learns and resumes exactly.
#include <gtest/gtest.h>
#include <torch/utils.h>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>

#include "test_util.hpp"
#include "train_fixtures.hpp"
#include "yolo2/data/image_folder.hpp"
#include "yolo2/data/synth.hpp"
#include "yolo2/eval/classify.hpp"
#include "yolo2/io/checkpoint.hpp"
#include "yolo2/io/darknet.hpp"
#include "yolo2/io/inference.hpp"
#include "yolo2/train/schedule.hpp"
#include "yolo2/train/trainer.hpp"

namespace fs = std::filesystem;
using namespace yolo2;
using namespace yolo2::testing;

// torchvision's ImageFolder rules: classes are the sorted sub-folders, files sorted within a class;
// a listed class order is kept; missing folders, unknown class folders and empty classes are errors
// that name the folder.
TEST(ImageFolder, ReadsTheLayoutAndNamesItsProblems) {
  TempDir dir;
  const cv::Mat img(40, 50, CV_8UC3, cv::Scalar(10, 20, 30));
  for (const char* f : {"b/2.jpg", "b/1.png", "a/x.jpeg", "c/z.JPG"}) {
    fs::create_directories(fs::path(dir.file("root/train")) / fs::path(f).parent_path());
    cv::imwrite(dir.file(std::string("root/train/") + f), img);
  }
  write_text(dir.file("root/train/a/notes.txt"), "not an image");
  const auto ds = data::load_image_folder({{dir.file("root"), "train"}}, {}, "data.train", true);
  EXPECT_EQ(ds.class_names, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(ds.size(), 4u);
  EXPECT_EQ(fs::path(ds.paths[1]).filename(), "1.png");
  EXPECT_EQ(ds.labels, (std::vector<int>{0, 1, 1, 2}));
  const auto listed = data::load_image_folder({{dir.file("root"), "train"}}, {"c", "b", "a", "d"}, "data.test", false);
  EXPECT_EQ(listed.labels, (std::vector<int>{2, 1, 1, 0}));
  EXPECT_CONTAINS(error_of([&] {
                    data::load_image_folder({{dir.file("root"), "val"}}, {}, "data.test", false);
                  }),
                  "data.test: " + dir.file("root/val") + " is not a folder");
  EXPECT_CONTAINS(error_of([&] {
                    data::load_image_folder({{dir.file("root"), "train"}}, {"a", "b"}, "data.train", true);
                  }),
                  "'c' is not one of the 2 classes");
  EXPECT_CONTAINS(error_of([&] {
                    data::load_image_folder({{dir.file("root"), "train"}}, {"a", "b", "c", "d"}, "data.train", true);
                  }),
                  "class 'd' has no images");
}

// --classification: balanced ImageFolder splits with more classes than the detection set (which
// are all among them), and images drawn from other streams than the detection images of the seed.
TEST(SynthClassification, WritesBalancedImageFolderSplits) {
  TempDir dir;
  const std::string root = make_classification_set(dir, 56, 28, 14, 5);
  const auto train = data::load_image_folder({{root, "train"}}, {}, "data.train", true);
  const auto val = data::load_image_folder({{root, "val"}}, train.class_names, "data.test", true);
  EXPECT_EQ(train.class_names.size(), 14u);
  for (const auto& name : data::synth_class_names(8))
    EXPECT_NE(std::find(train.class_names.begin(), train.class_names.end(), name), train.class_names.end()) << name;
  for (int64_t n : data::images_per_class(train)) EXPECT_EQ(n, 4);
  for (int64_t n : data::images_per_class(val)) EXPECT_EQ(n, 2);
  // The detection set of the same seed draws other pictures (its first image is not the same one).
  const std::string voc = make_dataset(dir, 2, 64, 5);
  const cv::Mat det = cv::imread(voc + "/JPEGImages/000001.jpg"), cls = cv::imread(train.paths[0]);
  EXPECT_TRUE(det.size() != cls.size() || cv::norm(det, cls, cv::NORM_L1) > 0);
  // It refuses to write over a folder it did not write, and replaces its own with --overwrite.
  data::SynthOptions again;
  again.out_dir = root;
  again.classification = true;
  again.num_classes = 14;
  EXPECT_CONTAINS(error_of([&] { data::write_synth(again); }), "is not empty");
  again.overwrite = true;
  again.train = 14, again.test = 14;
  data::write_synth(again);
  EXPECT_EQ(data::load_image_folder({{root, "train"}}, {}, "data.train", true).size(), 14u);
}

// darknet's poly policy: lr * (1 - update / max_batches)^power after the burn-in.
TEST(Schedule, PolyFollowsDarknet) {
  TrainConfig t;
  t.policy = LrPolicy::Poly;
  t.lr = 0.1, t.power = 4, t.burn_in = 0;
  EXPECT_DOUBLE_EQ(train::learning_rate(t, 0, 1000), 0.1);
  EXPECT_NEAR(train::learning_rate(t, 250, 1000), 0.1 * std::pow(0.75, 4), 1e-15);
  EXPECT_DOUBLE_EQ(train::learning_rate(t, 1000, 1000), 0.0);
}

// The classifier is darknet19.cfg's: the detector's first 23 layers, a 1x1 linear convolution with
// bias to the classes, a global average pool; its .cfg ends [avgpool] [softmax]. OpenCV's DNN reads
// the export and gives the same probabilities, so the same top-1, as yolo2.
TEST(Classifier, DarknetExportPredictsTheSameInOpenCv) {
  TempDir dir;
  Config c = default_config();
  c.model.head = Head::Classifier;
  c.model.width = 0.25;
  c.data.input_size = 64;
  torch::manual_seed(7);
  model::YoloV2 net(model::network_spec(c.model, 14));
  const auto& layers = net->spec().layers;
  ASSERT_EQ(layers.size(), 25u);
  EXPECT_EQ(layers[23].filters, 14);
  EXPECT_FALSE(layers[23].batch_normalize);
  EXPECT_EQ(layers[24].type, model::LayerSpec::Type::AvgPool);
  randomize_batchnorm(*net);
  {
    torch::NoGradGuard g;  // spread the class scores so that top-1 is not decided by rounding
    net->convs().back()->weight.mul_(8);
  }
  net->eval();
  c.data.classes.assign(14, "x");
  io::export_darknet(*net, c, dir.file("d19"), 0);
  const std::string cfg = read_text(dir.file("d19.cfg"));
  EXPECT_CONTAINS(cfg, "[avgpool]\n\n[softmax]\ngroups=1");
  EXPECT_EQ(cfg.find("[region]"), std::string::npos);
  cv::dnn::Net cvnet = cv::dnn::readNetFromDarknet(dir.file("d19.cfg"), dir.file("d19.weights"));
  cvnet.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  int same = 0;
  const int n = 12;
  cv::RNG rng(3);
  for (int i = 0; i < n; ++i) {
    cv::Mat image(64, 64, CV_8UC3);
    rng.fill(image, cv::RNG::UNIFORM, 0, 255);
    cv::GaussianBlur(image, image, cv::Size(9, 9), 0);
    const cv::Mat blob = cv::dnn::blobFromImage(image, 1 / 255.0, cv::Size(64, 64), cv::Scalar(), true, false);
    cvnet.setInput(blob);
    const cv::Mat theirs = cvnet.forward().reshape(1, 1);  // [1, 14] probabilities
    const at::Tensor x = at::from_blob(const_cast<float*>(blob.ptr<float>()), {1, 3, 64, 64}, at::kFloat).clone();
    const at::Tensor ours = eval::class_probabilities(*net, x, c10::Device(c10::kCPU)).flatten();
    ASSERT_EQ(theirs.total(), 14u);
    const at::Tensor t = at::from_blob(const_cast<float*>(theirs.ptr<float>()), {14}, at::kFloat);
    EXPECT_LT((ours - t).abs().max().item<float>(), 1e-4) << "image " << i;
    same += ours.argmax().item<int64_t>() == t.argmax().item<int64_t>();
  }
  EXPECT_EQ(same, n);
}

// export --prefix 23 (darknet's `partial`): the classifier's first 23 layers, which a detector of
// the same width takes as train.init_weights exactly as darknet19_448.conv.23.
TEST(Classifier, PrefixSeedsTheDetectorBackbone) {
  TempDir dir;
  ModelOptions mc;
  mc.width = 0.25;
  mc.head = Head::Classifier;
  torch::manual_seed(1);
  model::YoloV2 cls(model::network_spec(mc, 14));
  randomize_batchnorm(*cls);
  io::save_darknet_weights(*cls, dir.file("d19.conv.23"), 0, 23);
  mc.head = Head::Region;
  mc.anchors = voc_anchors();
  model::YoloV2 det(model::network_spec(mc, 8));
  const auto r = io::load_darknet_weights(*det, dir.file("d19.conv.23"), true);
  EXPECT_EQ(r.conv_layers_loaded, 18);
  EXPECT_EQ(r.floats_read, io::darknet_weight_floats(cls->spec(), 23));
  for (int k = 0; k < 18; ++k) {
    EXPECT_TRUE(det->convs()[k]->weight.equal(cls->convs()[k]->weight)) << k;
    EXPECT_TRUE(det->norms()[k]->running_var.equal(cls->norms()[k]->running_var)) << k;
  }
  EXPECT_FALSE(det->convs()[18]->weight.sizes() == cls->convs()[18]->weight.sizes());
}

// A pretraining run learns (the tiny set's images, augmented, are classified well after 120 steps)
// and writes the darknet files (the stop and resume of a pretraining run: the fine-tune test below).
TEST(Pretrain, LearnsAndWritesItsFiles) {
  TempDir dir;
  const std::string root = make_classification_set(dir, 48, 0, 6, 11);
  const Config c = classifier_config(root, dir.file("run"));
  train::TrainOptions o;
  const train::TrainSummary s = train::run_pretraining(c, o);
  EXPECT_GE(s.final_map, 0.9) << "top-1 on the training images";
  for (const char* f : {"classifier.cfg", "classifier.weights", "backbone.conv.23", "eval.csv", "accuracy.png"})
    EXPECT_TRUE(fs::exists(dir.file(std::string("run/") + f))) << f;
  EXPECT_EQ(
      read_text(dir.file("run/metrics.csv")).substr(0, 60).find("iteration,epoch,images_seen,lr,size,loss,class,top1"),
      0u);
  // eval and detect refuse a classifier checkpoint; export takes it.
  io::InferenceSource src;
  src.checkpoint = dir.file("run/last.ckpt");
  EXPECT_CONTAINS(error_of([&] { io::load_for_inference(src); }), "is a Darknet19 classifier");
  src.detector = false;
  EXPECT_EQ(io::load_for_inference(src).model->spec().head, Head::Classifier);
  // A classifier config is refused by `train`, naming the key.
  EXPECT_CONTAINS(error_of([&] { train::run_training(classifier_config(root, dir.file("run3")), o); }),
                  "model.head is classifier: train it with yolo2 pretrain");
}

// darknet19_448.cfg's stage, in the same run: after the main stage the batches come at
// classify.finetune_size, the lr restarts at classify.finetune_lr on its own poly curve without
// burn-in, and the exported classifier.cfg takes the fine-tune size. Stopped inside the stage and
// resumed, the run ends bit-identical to the uninterrupted one, with the same final top-1.
TEST(Pretrain, FineTuneStageFollowsDarknet19_448) {
  TempDir dir;
  const std::string root = make_classification_set(dir, 36, 0, 6, 12);
  auto config = [&](const std::string& run) {
    Config c = classifier_config(root, dir.file(run));
    c.train.max_batches = 12;
    c.train.burn_in = 4;
    c.train.power = 2;
    c.classify.finetune_size = 96;
    c.classify.finetune_batches = 8;
    c.classify.finetune_lr = 0.0005;
    return c;
  };
  train::TrainOptions o;  // evaluated at the end only (eval.every 0)
  const train::TrainSummary whole = train::run_pretraining(config("run"), o);
  const auto rows = csv_rows(dir.file("run/metrics.csv"));
  ASSERT_EQ(rows.size(), 20u);
  for (const auto& r : rows) {
    const double it = r[0];  // columns: iteration, epoch, images_seen, lr, size (the classifier has no gamma)
    if (it <= 12) {
      EXPECT_EQ(r[4], 64) << "iteration " << it;
      // darknet's burn-in ((update / burn_in)^4), then poly over the main stage.
      const double want = it < 4 ? 0.002 * std::pow(it / 4.0, 4) : 0.002 * std::pow(1.0 - it / 12.0, 2);
      EXPECT_NEAR(r[3], want, 1e-7 * want) << "iteration " << it;
    } else {
      EXPECT_EQ(r[4], 96) << "iteration " << it;
      EXPECT_NEAR(r[3], 0.0005 * std::pow(1.0 - (it - 12) / 8.0, 2), 1e-12 + 1e-7 * r[3]) << "iteration " << it;
    }
  }
  const std::string cfg = read_text(dir.file("run/classifier.cfg"));
  EXPECT_CONTAINS(cfg, "width=96");
  EXPECT_CONTAINS(cfg, "height=96");

  train::TrainOptions first = o;
  first.stop_after = 15;
  EXPECT_TRUE(train::run_pretraining(config("run2"), first).interrupted);
  train::TrainOptions rest = o;
  rest.resume = dir.file("run2/last.ckpt");
  const train::TrainSummary resumed = train::run_pretraining(Config{}, rest);
  EXPECT_FALSE(resumed.interrupted);
  EXPECT_GE(whole.final_map, 0.0);
  EXPECT_DOUBLE_EQ(whole.final_map, resumed.final_map);
  auto a = io::load_checkpoint(dir.file("run/last.ckpt")), b = io::load_checkpoint(dir.file("run2/last.ckpt"));
  EXPECT_EQ(b.state->iteration, 20);
  EXPECT_TRUE(bit_identical(*a.model, *b.model));
  EXPECT_EQ(csv_rows(dir.file("run2/metrics.csv")).size(), 20u);
}
