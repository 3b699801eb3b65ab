// Tests of the typed config: darknet defaults, YAML files with `base:` includes, `--set`
// overrides, the error messages (key path, file, line, suggestion), cross-key validation and the
// to_yaml round trip.
#include <gtest/gtest.h>

#include <filesystem>

#include <string>
#include <vector>

#include "test_util.hpp"
#include "yolo2/config.hpp"
#include "yolo2/error.hpp"

namespace {

using yolo2::Config;
using yolo2::Error;
using yolo2::parse_config;
using yolo2::testing::TempDir;
using yolo2::testing::write_text;

using yolo2::testing::error_of;

TEST(ConfigDefaults, MatchDarknetYolov2Voc) {
  const Config c = yolo2::default_config();
  // yolov2-voc.cfg [region] anchors, in grid cells.
  const std::vector<double> anchors{1.3221,  1.73145, 3.19275, 4.00944, 5.05587,
                                    8.09892, 9.47112, 4.84053, 11.2364, 10.0071};
  EXPECT_EQ(c.model.anchors, anchors);
  EXPECT_EQ(c.data.classes.size(), 20u);
  EXPECT_EQ(c.data.classes.front(), "aeroplane");
  EXPECT_EQ(c.data.classes.back(), "tvmonitor");
  EXPECT_EQ(c.data.input_size, 416);
  EXPECT_DOUBLE_EQ(c.loss.thresh, 0.6);
  EXPECT_DOUBLE_EQ(c.loss.object_scale, 5.0);
  EXPECT_DOUBLE_EQ(c.loss.noobject_scale, 1.0);
  EXPECT_DOUBLE_EQ(c.loss.class_scale, 1.0);
  EXPECT_DOUBLE_EQ(c.loss.coord_scale, 1.0);
  EXPECT_TRUE(c.loss.rescore);
  EXPECT_EQ(c.train.batch, 64);
  EXPECT_EQ(c.train.subdivisions, 8);
  EXPECT_DOUBLE_EQ(c.train.lr, 0.001);
  EXPECT_DOUBLE_EQ(c.train.momentum, 0.9);
  EXPECT_DOUBLE_EQ(c.train.decay, 0.0005);
  EXPECT_EQ(c.train.burn_in, 1000);
  EXPECT_EQ(c.train.steps, (std::vector<int64_t>{40000, 60000}));
  EXPECT_EQ(c.train.scales, (std::vector<double>{0.1, 0.1}));
  EXPECT_EQ(c.train.max_batches, 80200);
  EXPECT_DOUBLE_EQ(c.data.augment.jitter, 0.3);
  EXPECT_DOUBLE_EQ(c.data.augment.hue, 0.1);
  EXPECT_DOUBLE_EQ(c.data.augment.saturation, 1.5);
  EXPECT_DOUBLE_EQ(c.data.augment.exposure, 1.5);
  EXPECT_TRUE(c.data.augment.flip);
  EXPECT_EQ(c.data.max_boxes, 30);
  EXPECT_FALSE(c.data.train_difficult);
  // darknet random=1: (rand(0..9) + 10) * 32, i.e. 320..608 in steps of 32.
  std::vector<int> sizes;
  for (int s = 320; s <= 608; s += 32) sizes.push_back(s);
  EXPECT_EQ(c.data.multiscale_sizes, sizes);
  EXPECT_EQ(c.data.multiscale_every, 10);
  // The defaults must pass their own validation.
  EXPECT_NO_THROW(yolo2::validate(c));
}

TEST(ConfigDefaults, EveryKeyHasDocAndDefault) {
  const auto& keys = yolo2::config_keys();
  ASSERT_GT(keys.size(), 40u);
  for (const auto& k : keys) {
    EXPECT_FALSE(k.path.empty());
    EXPECT_FALSE(k.doc.empty()) << k.path;
    EXPECT_FALSE(k.default_value.empty()) << k.path;
    EXPECT_FALSE(k.type.empty()) << k.path;
  }
  // Spot-check that the recorded default is the real one.
  for (const auto& k : keys) {
    if (k.path == "loss.thresh") {
      EXPECT_EQ(k.default_value, "0.6");
    }
  }
}

TEST(ConfigFile, YamlSetsKeys) {
  TempDir dir("yolo2-config");
  const std::string path = dir.file("a.yaml");
  write_text(path,
             "train:\n"
             "  lr: 0.01\n"
             "  batch: 32\n"
             "  subdivisions: 4\n"
             "  policy: cosine\n"
             "loss:\n"
             "  classification: focal\n"
             "  focal:\n"
             "    gamma: 1.5\n"
             "    alpha: auto\n"
             "data:\n"
             "  classes: [a, b, c]\n"
             "  augment:\n"
             "    jitter_mode: letterbox\n"
             "runtime:\n"
             "  seed: 7\n");
  const Config c = yolo2::load_config(path);
  EXPECT_DOUBLE_EQ(c.train.lr, 0.01);
  EXPECT_EQ(c.train.batch, 32);
  EXPECT_EQ(c.train.subdivisions, 4);
  EXPECT_EQ(c.train.policy, yolo2::LrPolicy::Cosine);
  EXPECT_EQ(c.loss.classification, yolo2::ClassLoss::Focal);
  EXPECT_DOUBLE_EQ(c.loss.focal.gamma, 1.5);
  EXPECT_EQ(c.loss.focal.alpha.kind, yolo2::AlphaSpec::Kind::Auto);
  EXPECT_EQ(c.data.classes, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(c.data.augment.jitter_mode, yolo2::JitterMode::Letterbox);
  EXPECT_EQ(c.runtime.seed, 7u);
  EXPECT_EQ(c.source, path);
  // Keys the file does not mention keep their defaults.
  EXPECT_DOUBLE_EQ(c.train.momentum, 0.9);
  EXPECT_EQ(c.data.input_size, 416);
}

TEST(ConfigFile, BaseIsRelativeToTheFileAndChildOverrides) {
  TempDir dir("yolo2-config");
  // The base lives in a sub-folder, and the child is loaded from elsewhere than the cwd: `base:`
  // must resolve against the child's folder.
  write_text(dir.file("common/base.yaml"), "train:\n  lr: 0.01\n  momentum: 0.8\ndata:\n  input_size: 320\n");
  write_text(dir.file("common/child.yaml"), "base: base.yaml\ntrain:\n  lr: 0.02\n");
  write_text(dir.file("grandchild.yaml"), "base: common/child.yaml\ndata:\n  input_size: 288\n");
  const Config c = yolo2::load_config(dir.file("grandchild.yaml"));
  EXPECT_DOUBLE_EQ(c.train.lr, 0.02);       // child beats base
  EXPECT_DOUBLE_EQ(c.train.momentum, 0.8);  // from the base
  EXPECT_EQ(c.data.input_size, 288);        // grandchild beats base
}

TEST(ConfigFile, MissingBaseNamesThePath) {
  TempDir dir("yolo2-config");
  write_text(dir.file("child.yaml"), "base: nowhere.yaml\n");
  const std::string msg = error_of([&] { yolo2::load_config(dir.file("child.yaml")); });
  EXPECT_CONTAINS(msg, "nowhere.yaml");
}

TEST(ConfigFile, BaseCycleIsAnError) {
  TempDir dir("yolo2-config");
  write_text(dir.file("a.yaml"), "base: b.yaml\n");
  write_text(dir.file("b.yaml"), "base: a.yaml\n");
  const std::string msg = error_of([&] { yolo2::load_config(dir.file("a.yaml")); });
  EXPECT_CONTAINS(msg, "base");
}

TEST(ConfigOverride, SetOverridesScalarsAfterTheFile) {
  TempDir dir("yolo2-config");
  write_text(dir.file("a.yaml"), "train:\n  lr: 0.01\n");
  const Config c = yolo2::load_config(dir.file("a.yaml"), {"train.lr=0.05", "loss.focal.gamma=0.5", "train.name=run x",
                                                           "data.augment.flip=false", "runtime.seed=12345"});
  EXPECT_DOUBLE_EQ(c.train.lr, 0.05);
  EXPECT_DOUBLE_EQ(c.loss.focal.gamma, 0.5);
  EXPECT_EQ(c.train.name, "run x");
  EXPECT_FALSE(c.data.augment.flip);
  EXPECT_EQ(c.runtime.seed, 12345u);
}

TEST(ConfigOverride, SetAcceptsLists) {
  const Config c = parse_config("", "<t>",
                                {"data.multiscale_sizes=[320,352]",
                                 "data.train=[{root: /d/VOC2007, split: trainval}, "
                                 "{root: /d/VOC2012, split: train}]",
                                 "loss.focal.alpha=0.25"});
  EXPECT_EQ(c.data.multiscale_sizes, (std::vector<int>{320, 352}));
  ASSERT_EQ(c.data.train.size(), 2u);
  EXPECT_EQ(c.data.train[0].root, "/d/VOC2007");
  EXPECT_EQ(c.data.train[0].split, "trainval");
  EXPECT_EQ(c.data.train[1].root, "/d/VOC2012");
  EXPECT_EQ(c.data.train[1].split, "train");
  EXPECT_EQ(c.loss.focal.alpha.kind, yolo2::AlphaSpec::Kind::Scalar);
  EXPECT_DOUBLE_EQ(c.loss.focal.alpha.scalar, 0.25);
}

TEST(ConfigOverride, LaterSetWins) {
  const Config c = parse_config("", "<t>", {"train.lr=0.1", "train.lr=0.2"});
  EXPECT_DOUBLE_EQ(c.train.lr, 0.2);
}

TEST(ConfigOverride, MalformedAssignmentIsAnError) {
  EXPECT_CONTAINS(error_of([] { parse_config("", "<t>", {"train.lr"}); }), "train.lr");
  EXPECT_CONTAINS(error_of([] { parse_config("", "<t>", {"train=1"}); }), "section");
}

TEST(ConfigErrors, UnknownKeyNamesFullPathAndSuggests) {
  const std::string msg = error_of([] { parse_config("train:\n  lrr: 0.1\n", "cfg.yaml"); });
  EXPECT_CONTAINS(msg, "'train.lrr'");
  EXPECT_CONTAINS(msg, "'train.lr'");
  EXPECT_CONTAINS(msg, "cfg.yaml:2");

  const std::string deep = error_of([] { parse_config("loss:\n  focal:\n    gama: 2\n", "cfg.yaml"); });
  EXPECT_CONTAINS(deep, "'loss.focal.gama'");
  EXPECT_CONTAINS(deep, "'loss.focal.gamma'");
  EXPECT_CONTAINS(deep, "cfg.yaml:3");
}

TEST(ConfigErrors, MisspelledSectionSuggestsTheSection) {
  const std::string msg = error_of([] { parse_config("trian:\n  lr: 0.1\n", "cfg.yaml"); });
  EXPECT_CONTAINS(msg, "trian");
  EXPECT_CONTAINS(msg, "'train");
  EXPECT_CONTAINS(msg, "cfg.yaml:1");
}

TEST(ConfigErrors, UnknownOverrideKeyNamesPathAndSuggests) {
  const std::string a = error_of([] { parse_config("", "<t>", {"train.lrr=0.1"}); });
  EXPECT_CONTAINS(a, "'train.lrr'");
  EXPECT_CONTAINS(a, "'train.lr'");
  const std::string b = error_of([] { parse_config("", "<t>", {"trian.lr=0.1"}); });
  EXPECT_CONTAINS(b, "'trian.lr'");
  EXPECT_CONTAINS(b, "train");
}

TEST(ConfigErrors, WrongTypeNamesKeyFileAndLine) {
  TempDir dir("yolo2-config");
  const std::string path = dir.file("bad.yaml");
  write_text(path, "# comment\ntrain:\n  lr: 0.01\n  batch: abc\n");
  const std::string msg = error_of([&] { yolo2::load_config(path); });
  EXPECT_CONTAINS(msg, "train.batch");
  EXPECT_CONTAINS(msg, path + ":4");
  EXPECT_CONTAINS(msg, "abc");
  EXPECT_CONTAINS(msg, "integer");
}

TEST(ConfigErrors, WrongTypesAreRejected) {
  // A fractional integer, a word for a number, a map for a list, a bad enum word, a bad bool.
  EXPECT_CONTAINS(error_of([] { parse_config("train:\n  batch: 32.5\n"); }), "train.batch");
  EXPECT_CONTAINS(error_of([] { parse_config("train:\n  lr: fast\n"); }), "train.lr");
  EXPECT_CONTAINS(error_of([] { parse_config("model:\n  anchors: {a: 1}\n"); }), "model.anchors");
  EXPECT_CONTAINS(error_of([] { parse_config("train:\n  policy: linear\n"); }), "train.policy");
  EXPECT_CONTAINS(error_of([] { parse_config("data:\n  augment:\n    flip: maybe\n"); }), "data.augment.flip");
  EXPECT_CONTAINS(error_of([] { parse_config("runtime:\n  seed: -1\n"); }), "runtime.seed");
  EXPECT_CONTAINS(error_of([] { parse_config("train: 3\n"); }), "section");
  EXPECT_CONTAINS(error_of([] { parse_config("", "<t>", {"train.batch=abc"}); }), "train.batch");
}

TEST(ConfigErrors, OutOfRangeNamesTheKey) {
  const std::string msg = error_of([] { parse_config("loss:\n  thresh: 1.5\n", "r.yaml"); });
  EXPECT_CONTAINS(msg, "loss.thresh");
  EXPECT_CONTAINS(msg, "1.5");
  EXPECT_CONTAINS(msg, "r.yaml:2");
  EXPECT_CONTAINS(error_of([] { parse_config("", "<t>", {"train.lr=-1"}); }), "train.lr");
  EXPECT_CONTAINS(error_of([] { parse_config("", "<t>", {"data.augment.jitter=0.7"}); }), "data.augment.jitter");
  EXPECT_CONTAINS(error_of([] { parse_config("", "<t>", {"runtime.device=gpu"}); }), "runtime.device");
}

TEST(ConfigValidate, BatchMustBeDivisibleBySubdivisions) {
  const std::string msg = error_of([] { parse_config("train:\n  batch: 10\n  subdivisions: 4\n"); });
  EXPECT_CONTAINS(msg, "train.subdivisions");
  EXPECT_NO_THROW(parse_config("train:\n  batch: 12\n  subdivisions: 4\n"));
}

TEST(ConfigValidate, AnchorsMustComeInPairs) {
  EXPECT_CONTAINS(error_of([] { parse_config("model:\n  anchors: [1, 2, 3]\n"); }), "model.anchors");
  EXPECT_CONTAINS(error_of([] { parse_config("model:\n  anchors: []\n"); }), "model.anchors");
  EXPECT_NO_THROW(parse_config("model:\n  anchors: [1, 2, 3, 4]\n"));
}

TEST(ConfigValidate, AlphaListMustMatchClassCount) {
  const std::string msg =
      error_of([] { parse_config("data:\n  classes: [a, b, c]\nloss:\n  focal:\n    alpha: [1, 2]\n"); });
  EXPECT_CONTAINS(msg, "loss.focal.alpha");
  EXPECT_CONTAINS(msg, "3");
  const Config ok = parse_config("data:\n  classes: [a, b]\nloss:\n  focal:\n    alpha: [0.25, 0.75]\n");
  EXPECT_EQ(ok.loss.focal.alpha.kind, yolo2::AlphaSpec::Kind::PerClass);
  EXPECT_EQ(ok.loss.focal.alpha.per_class, (std::vector<double>{0.25, 0.75}));
}

TEST(ConfigValidate, SizesMustBeMultiplesOf32) {
  EXPECT_CONTAINS(error_of([] { parse_config("", "<t>", {"data.multiscale_sizes=[320,330]"}); }),
                  "data.multiscale_sizes");
  EXPECT_CONTAINS(error_of([] { parse_config("data:\n  input_size: 400\n"); }), "data.input_size");
}

TEST(ConfigValidate, OtherCrossKeyChecks) {
  EXPECT_CONTAINS(error_of([] { parse_config("train:\n  steps: [100]\n  scales: [0.1, 0.1]\n"); }), "train.scales");
  EXPECT_CONTAINS(error_of([] { parse_config("train:\n  steps: [200, 100]\n  scales: [0.1, 0.1]\n"); }), "train.steps");
  EXPECT_CONTAINS(error_of([] { parse_config("data:\n  classes: [a, a]\n"); }), "data.classes");
  EXPECT_CONTAINS(error_of([] {
                    parse_config(
                        "loss:\n  focal:\n    gamma_schedule:\n      type: step\n"
                        "      milestones: [0.5]\n      values: [0, 1, 2]\n");
                  }),
                  "loss.focal.gamma_schedule.values");
}

TEST(ConfigValidate, FocalGammaIsRejectedUnderANonConstantGammaSchedule) {
  // train::focal_gamma ignores loss.focal.gamma unless the schedule is constant: a changed gamma
  // next to a ramp or steps would silently not be used.
  const std::string ramp = error_of(
      [] { parse_config("loss:\n  focal:\n    gamma: 1.5\n    gamma_schedule: {type: linear, end: 3}\n", "r.yaml"); });
  EXPECT_CONTAINS(ramp, "r.yaml");
  EXPECT_CONTAINS(ramp, "'loss.focal.gamma'");
  EXPECT_CONTAINS(ramp, "loss.focal.gamma_schedule.type is linear");
  EXPECT_CONTAINS(ramp, "loss.focal.gamma_schedule.end");
  const std::string steps = error_of([] {
    parse_config("", "<t>",
                 {"loss.focal.gamma_schedule={type: step, milestones: [0.5], values: [0, 2]}", "loss.focal.gamma=0.5"});
  });
  EXPECT_CONTAINS(steps, "'loss.focal.gamma'");
  EXPECT_CONTAINS(steps, "loss.focal.gamma_schedule.type is step");
  EXPECT_CONTAINS(steps, "loss.focal.gamma_schedule.values");
  EXPECT_CONTAINS(error_of([] {
                    parse_config("", "<t>", {"loss.focal.gamma_schedule.type=cosine", "loss.focal.gamma=0"});
                  }),
                  "loss.focal.gamma_schedule.end");

  // The default gamma passes: to_yaml writes every key, so a stored config carries it.
  const Config ramped = parse_config("loss:\n  focal:\n    gamma_schedule: {type: cosine, start: 0, end: 3}\n");
  EXPECT_NO_THROW(parse_config(yolo2::to_yaml(ramped), "<roundtrip>"));
  // And any gamma under the constant schedule, which is where it is used.
  EXPECT_DOUBLE_EQ(parse_config("loss:\n  focal:\n    gamma: 1.5\n").loss.focal.gamma, 1.5);
}

#ifdef YOLO2_SOURCE_DIR
TEST(ConfigFile, ShippedConfigsLoad) {
  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(YOLO2_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    try {
      yolo2::load_config(entry.path().string());
      ++loaded;
    } catch (const Error& e) {
      ADD_FAILURE() << e.what();
    }
  }
  EXPECT_GE(loaded, 9);
  // The GPU config: voc_ce's recipe, one pass per batch, bf16, NHWC, checkpoints by time.
  const Config gpu = yolo2::load_config(std::string(YOLO2_SOURCE_DIR) + "/configs/voc_gpu.yaml");
  EXPECT_EQ(gpu.train.subdivisions, 1);
  EXPECT_EQ(gpu.train.batch, 64);
  EXPECT_EQ(gpu.runtime.precision, yolo2::runtime::Precision::Bf16);
  EXPECT_GT(gpu.train.checkpoint_minutes, 0);
  EXPECT_EQ(gpu.data.workers, -1);
}
#endif

// A config file is one YAML document: a second one after '---' is an error naming its line, not
// silently ignored (a leading '---' and an empty trailing one are fine).
TEST(ConfigFile, SecondYamlDocumentIsAnErrorNamingItsLine) {
  TempDir dir("yolo2-config");
  write_text(dir.file("two.yaml"), "train:\n  lr: 0.1\n---\ntrain:\n  lr: 0.2\n");
  const std::string e = error_of([&] { yolo2::load_config(dir.file("two.yaml")); });
  EXPECT_CONTAINS(e, dir.file("two.yaml") + ":4");
  EXPECT_CONTAINS(e, "second YAML document");
  write_text(dir.file("one.yaml"), "---\ntrain:\n  lr: 0.1\n---\n");
  EXPECT_DOUBLE_EQ(yolo2::load_config(dir.file("one.yaml")).train.lr, 0.1);
}

// A config the system cannot read is an error naming it and the system's reason: one that cannot be
// opened, and one whose read fails after opening (EIO; /proc/self/mem reads so at offset 0, even as root).
TEST(ConfigFile, UnreadableConfigNamesTheFileAndTheReason) {
  TempDir dir("yolo2-config");
  std::filesystem::create_symlink("loop.yaml", dir.file("loop.yaml"));
  EXPECT_CONTAINS(error_of([&] { yolo2::load_config(dir.file("loop.yaml")); }), dir.file("loop.yaml") + ": ");
  EXPECT_CONTAINS(error_of([&] { yolo2::load_config("/proc/self/mem"); }),
                  "/proc/self/mem: cannot read: Input/output error");
}

TEST(ConfigValidate, ValidationErrorNamesTheFile) {
  TempDir dir("yolo2-config");
  const std::string path = dir.file("v.yaml");
  write_text(path, "train:\n  batch: 10\n  subdivisions: 3\n");
  EXPECT_CONTAINS(error_of([&] { yolo2::load_config(path); }), path);
}

TEST(ConfigYaml, ToYamlRoundTripsExactly) {
  // A config far from the defaults, including lists, nested sections, enums and strings that
  // need quoting, must survive to_yaml -> parse_config unchanged.
  const Config c = parse_config(
      "data:\n"
      "  classes: [cat, 'no', 'yes: maybe', '123']\n"
      "  train: [{root: /data/VOC 2007, split: trainval}]\n"
      "  multiscale_sizes: [320, 352]\n"
      "  augment:\n    jitter_mode: letterbox\n    hue: 0.05\n"
      "loss:\n"
      "  classification: focal\n"
      "  focal:\n"
      "    alpha: [0.1, 0.2, 0.3, 0.4]\n"
      "    gamma_schedule: {type: step, milestones: [0.25, 0.5], values: [0, 1, 2]}\n"
      "train:\n  lr: 0.0123456789\n  init_weights: ''\n  name: 'a: b # c'\n"
      "runtime:\n  seed: 18446744073709551615\n  device: 'cuda:1'\n",
      "<t>");
  EXPECT_EQ(c.runtime.seed, UINT64_MAX);
  const std::string once = yolo2::to_yaml(c);
  const Config back = parse_config(once, "<roundtrip>");
  EXPECT_EQ(yolo2::to_yaml(back), once);
  EXPECT_EQ(back.data.classes, c.data.classes);
  EXPECT_EQ(back.train.name, "a: b # c");
  EXPECT_EQ(back.train.lr, c.train.lr);  // bit-exact, not just close
  EXPECT_EQ(back.model.anchors, c.model.anchors);
  EXPECT_EQ(back.runtime.seed, UINT64_MAX);
  EXPECT_EQ(back.loss.focal.gamma_schedule.milestones, (std::vector<double>{0.25, 0.5}));

  // The defaults round-trip too.
  const std::string defaults = yolo2::to_yaml(yolo2::default_config());
  EXPECT_EQ(yolo2::to_yaml(parse_config(defaults)), defaults);
}

TEST(ConfigYaml, ToYamlListsEveryKey) {
  const std::string text = yolo2::to_yaml(yolo2::default_config());
  for (const auto& k : yolo2::config_keys()) {
    const std::string leaf = k.path.substr(k.path.rfind('.') + 1);
    EXPECT_NE(text.find(leaf + ":"), std::string::npos) << k.path;
  }
}

TEST(ConfigFile, InvalidYamlNamesFileAndLine) {
  TempDir dir("yolo2-config");
  const std::string path = dir.file("broken.yaml");
  write_text(path, "train:\n  lr: [0.1\n  batch: 2\n");
  const std::string msg = error_of([&] { yolo2::load_config(path); });
  EXPECT_CONTAINS(msg, path + ":");
  EXPECT_CONTAINS(msg, "invalid YAML");
}

TEST(ConfigFile, MissingFileNamesIt) {
  EXPECT_CONTAINS(error_of([] { yolo2::load_config("/nonexistent/dir/x.yaml"); }), "/nonexistent/dir/x.yaml");
}

}  // namespace
