#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <pugixml.hpp>

#include "test_util.hpp"
#include "yolo2/data/synth.hpp"
#include "yolo2/data/voc.hpp"
#include "yolo2/error.hpp"

namespace {

namespace fs = std::filesystem;
using yolo2::data::ImageRecord;
using yolo2::data::Object;
using yolo2::data::SynthOptions;
using yolo2::data::SynthResult;
using yolo2::data::write_synth;
using yolo2::testing::read_text;
using yolo2::testing::TempDir;

const char* const kSplits[] = {"train", "val", "trainval", "test"};

std::vector<std::string> read_lines(const fs::path& path) {
  std::vector<std::string> lines;
  std::string text = read_text(path.string()), line;
  for (char ch : text) {
    if (ch == '\n') {
      lines.push_back(line);
      line.clear();
    } else {
      line += ch;
    }
  }
  EXPECT_TRUE(line.empty()) << path << " does not end with a newline";
  return lines;
}

// Every regular file under `root`, by relative path, with its bytes.
std::map<std::string, std::string> tree_bytes(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(root))
    if (entry.is_regular_file()) files[fs::relative(entry.path(), root).string()] = read_text(entry.path().string());
  return files;
}

// One moderate dataset shared by the layout, parse-back and content tests (generated once).
class SynthDataset : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<TempDir>("yolo2-synth");
    SynthOptions o;
    o.out_dir = dir_->str();
    o.train = 40;
    o.test = 16;
    o.size = 128;
    o.seed = 11;
    o.threads = 2;
    options_ = o;
    result_ = std::make_unique<SynthResult>(write_synth(o));
  }
  static void TearDownTestSuite() {
    result_.reset();
    dir_.reset();
  }
  static fs::path root() { return dir_->path(); }
  static const SynthResult& result() { return *result_; }
  static const SynthOptions& options() { return options_; }

 private:
  static std::unique_ptr<TempDir> dir_;
  static std::unique_ptr<SynthResult> result_;
  static SynthOptions options_;
};
std::unique_ptr<TempDir> SynthDataset::dir_;
std::unique_ptr<SynthResult> SynthDataset::result_;
SynthOptions SynthDataset::options_;

TEST(SynthClassNames, AreDistinctAndStableAcrossClassCounts) {
  const auto all = yolo2::data::synth_class_names(14);  // 10 detection shapes + 4 for --classification
  ASSERT_EQ(all.size(), 14u);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 14u);
  for (int n = 6; n <= 14; ++n) {
    const auto names = yolo2::data::synth_class_names(n);
    ASSERT_EQ(static_cast<int>(names.size()), n);
    EXPECT_TRUE(std::equal(names.begin(), names.end(), all.begin()));
  }
  EXPECT_THROW(yolo2::data::synth_class_names(5), yolo2::Error);
  EXPECT_THROW(yolo2::data::synth_class_names(15), yolo2::Error);
}

TEST_F(SynthDataset, WritesVocLayoutAndSplits) {
  const int n = options().train + options().test;
  ASSERT_EQ(static_cast<int>(result().images.size()), n);
  EXPECT_GT(result().seconds, 0.0);
  EXPECT_EQ(read_lines(root() / "classes.txt"), result().class_names);
  EXPECT_EQ(result().class_names, yolo2::data::synth_class_names(options().num_classes));

  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%06d", i + 1);
    ids.push_back(buf);
    const ImageRecord& rec = result().images[i];
    EXPECT_EQ(rec.id, ids.back());
    EXPECT_TRUE(fs::is_regular_file(root() / "Annotations" / (rec.id + ".xml"))) << rec.id;
    EXPECT_TRUE(fs::is_regular_file(root() / "JPEGImages" / (rec.id + ".jpg"))) << rec.id;
    EXPECT_EQ(fs::path(rec.image_path), root() / "JPEGImages" / (rec.id + ".jpg"));
    EXPECT_EQ(fs::path(rec.annotation), root() / "Annotations" / (rec.id + ".xml"));
  }
  const fs::path sets = root() / "ImageSets" / "Main";
  const auto trainval = read_lines(sets / "trainval.txt");
  const auto test = read_lines(sets / "test.txt");
  EXPECT_EQ(trainval, std::vector<std::string>(ids.begin(), ids.begin() + options().train));
  EXPECT_EQ(test, std::vector<std::string>(ids.begin() + options().train, ids.end()));

  const auto train = read_lines(sets / "train.txt");
  const auto val = read_lines(sets / "val.txt");
  EXPECT_TRUE(std::is_sorted(train.begin(), train.end()));
  EXPECT_TRUE(std::is_sorted(val.begin(), val.end()));
  EXPECT_EQ(train.size(), 20u);  // "about half": ceil(40 / 2)
  std::vector<std::string> both;
  std::set_union(train.begin(), train.end(), val.begin(), val.end(), std::back_inserter(both));
  EXPECT_EQ(both, trainval);
  std::vector<std::string> common;
  std::set_intersection(train.begin(), train.end(), val.begin(), val.end(), std::back_inserter(common));
  EXPECT_TRUE(common.empty());
  // Shuffled, not the first half: both splits reach into both halves of the ids.
  EXPECT_LT(train.front(), ids[options().train / 2]);
  EXPECT_GT(train.back(), ids[options().train / 2]);
}

TEST_F(SynthDataset, PerClassFilesFlagEachImageOfTheSplit) {
  const fs::path sets = root() / "ImageSets" / "Main";
  std::map<std::string, const ImageRecord*> by_id;
  for (const auto& rec : result().images) by_id[rec.id] = &rec;
  for (const char* split : kSplits) {
    const auto ids = read_lines(sets / (std::string(split) + ".txt"));
    for (size_t k = 0; k < result().class_names.size(); ++k) {
      const fs::path file = sets / (result().class_names[k] + "_" + split + ".txt");
      ASSERT_TRUE(fs::is_regular_file(file)) << file;
      std::vector<std::string> expected;
      for (const auto& id : ids) {
        bool any = false, easy = false;
        for (const Object& o : by_id.at(id)->objects) {
          if (o.label != static_cast<int>(k)) continue;
          any = true;
          easy = easy || !o.difficult;
        }
        expected.push_back(id + (easy ? "  1" : any ? "  0" : " -1"));
      }
      EXPECT_EQ(read_lines(file), expected) << file;
    }
  }
}

TEST_F(SynthDataset, AnnotationsParseBackToTheResult) {
  yolo2::data::ParseOptions po;
  po.class_names = result().class_names;
  for (const ImageRecord& rec : result().images) {
    std::vector<yolo2::data::ParseIssue> issues;
    const ImageRecord parsed = yolo2::data::parse_voc_xml(rec.annotation, po, &issues);
    EXPECT_TRUE(issues.empty()) << rec.id << ": " << issues.front().message;
    EXPECT_EQ(parsed.width, rec.width);
    EXPECT_EQ(parsed.height, rec.height);
    ASSERT_EQ(parsed.objects.size(), rec.objects.size()) << rec.id;
    ASSERT_FALSE(rec.objects.empty()) << rec.id;
    for (size_t j = 0; j < rec.objects.size(); ++j) {
      const Object &a = parsed.objects[j], &b = rec.objects[j];
      EXPECT_EQ(a.name, b.name);
      EXPECT_EQ(a.label, b.label);
      EXPECT_EQ(b.name, result().class_names[b.label]);
      EXPECT_EQ(a.x1, b.x1);
      EXPECT_EQ(a.y1, b.y1);
      EXPECT_EQ(a.x2, b.x2);
      EXPECT_EQ(a.y2, b.y2);
      EXPECT_EQ(a.difficult, b.difficult);
      EXPECT_EQ(a.truncated, b.truncated);
    }
    const cv::Mat img = cv::imread(rec.image_path);
    ASSERT_FALSE(img.empty()) << rec.image_path;
    EXPECT_EQ(img.cols, rec.width);
    EXPECT_EQ(img.rows, rec.height);
  }
}

TEST_F(SynthDataset, XmlFollowsTheVocSchemaWithOneBasedCoordinates) {
  for (const ImageRecord& rec : result().images) {
    pugi::xml_document doc;
    ASSERT_TRUE(doc.load_file(rec.annotation.c_str())) << rec.annotation;
    const pugi::xml_node ann = doc.child("annotation");
    std::vector<std::string> order;
    for (const auto& child : ann.children()) order.push_back(child.name());
    std::vector<std::string> expected{"folder", "filename", "source", "size", "segmented"};
    expected.resize(expected.size() + rec.objects.size(), "object");
    EXPECT_EQ(order, expected) << rec.id;
    EXPECT_STREQ(ann.child_value("filename"), (rec.id + ".jpg").c_str());
    EXPECT_EQ(ann.child("size").child("width").text().as_int(), rec.width);
    EXPECT_EQ(ann.child("size").child("height").text().as_int(), rec.height);
    EXPECT_STREQ(ann.child("size").child_value("depth"), "3");
    EXPECT_STREQ(ann.child_value("segmented"), "0");
    size_t j = 0;
    for (const auto& obj : ann.children("object")) {
      const Object& o = rec.objects.at(j++);
      std::vector<std::string> fields;
      for (const auto& child : obj.children()) fields.push_back(child.name());
      EXPECT_EQ(fields, (std::vector<std::string>{"name", "pose", "truncated", "difficult", "bndbox"}));
      EXPECT_STREQ(obj.child_value("pose"), "Unspecified");
      EXPECT_STREQ(obj.child_value("truncated"), o.truncated ? "1" : "0");
      EXPECT_STREQ(obj.child_value("difficult"), o.difficult ? "1" : "0");
      const auto box = obj.child("bndbox");
      EXPECT_EQ(std::string(box.child_value("xmin")), std::to_string(static_cast<int>(o.x1) + 1));
      EXPECT_EQ(std::string(box.child_value("ymin")), std::to_string(static_cast<int>(o.y1) + 1));
      EXPECT_EQ(std::string(box.child_value("xmax")), std::to_string(static_cast<int>(o.x2) + 1));
      EXPECT_EQ(std::string(box.child_value("ymax")), std::to_string(static_cast<int>(o.y2) + 1));
    }
  }
}

TEST_F(SynthDataset, BoxesAreIntegralInsideTheImageAndTruncationTouchesTheBorder) {
  const int size = options().size;
  bool landscape = false, portrait = false;
  for (const ImageRecord& rec : result().images) {
    EXPECT_EQ(std::max(rec.width, rec.height), size);
    EXPECT_GE(std::min(rec.width, rec.height), size * 3 / 4);
    landscape = landscape || rec.width > rec.height;
    portrait = portrait || rec.height > rec.width;
    for (const Object& o : rec.objects) {
      for (float v : {o.x1, o.y1, o.x2, o.y2}) EXPECT_EQ(v, std::floor(v));
      EXPECT_GE(o.x1, 0.f);
      EXPECT_GE(o.y1, 0.f);
      EXPECT_LE(o.x2, static_cast<float>(rec.width) - 1.f);
      EXPECT_LE(o.y2, static_cast<float>(rec.height) - 1.f);
      EXPECT_LE(o.x1, o.x2);
      EXPECT_LE(o.y1, o.y2);
      const bool touches = o.x1 == 0 || o.y1 == 0 || o.x2 == static_cast<float>(rec.width - 1) ||
                           o.y2 == static_cast<float>(rec.height - 1);
      EXPECT_TRUE(!o.truncated || touches) << rec.id << " " << o.name;
      // Tiny objects are always difficult (side counted in pixels, inclusive corners).
      const bool tiny = std::max(o.x2 - o.x1, o.y2 - o.y1) + 1 < 12;
      EXPECT_TRUE(!tiny || o.difficult) << rec.id;
    }
  }
  EXPECT_TRUE(landscape);
  EXPECT_TRUE(portrait);
}

TEST_F(SynthDataset, HasTruncatedDifficultAndOccludedObjectsAndConsistentCounts) {
  int difficult = 0, truncated = 0, large_difficult = 0, total = 0;
  std::vector<int> per_class(result().class_names.size(), 0);
  for (const ImageRecord& rec : result().images) {
    EXPECT_LE(static_cast<int>(rec.objects.size()), options().max_objects);
    for (const Object& o : rec.objects) {
      ++total;
      ++per_class.at(o.label);
      difficult += o.difficult;
      truncated += o.truncated;
      // A difficult object this large can only be difficult because it is hidden.
      large_difficult += o.difficult && std::min(o.x2 - o.x1, o.y2 - o.y1) >= 12;
    }
  }
  EXPECT_EQ(result().difficult, difficult);
  EXPECT_EQ(result().truncated, truncated);
  EXPECT_EQ(result().objects_per_class, per_class);
  EXPECT_GT(truncated, total / 20);
  EXPECT_LT(truncated, total / 2);
  EXPECT_GT(difficult, total / 20);
  EXPECT_LT(difficult, total / 2);
  EXPECT_GT(large_difficult, 0);
}

// Objects get a colour far from what they cover, so the mean colour inside a real box differs
// from the frame around it much more than for the same box put at a random place.
TEST_F(SynthDataset, BoxesSitOnContrastingObjects) {
  auto contrast = [](const cv::Mat& img, cv::Rect box) {
    const cv::Rect outer = (box + cv::Size(4, 4) - cv::Point(2, 2)) & cv::Rect(0, 0, img.cols, img.rows);
    cv::Mat frame(img.size(), CV_8UC1, cv::Scalar(0));
    frame(outer).setTo(255);
    frame(box).setTo(0);
    const cv::Scalar in = cv::mean(img(box)), out = cv::mean(img, frame);
    return std::abs(in[0] - out[0]) + std::abs(in[1] - out[1]) + std::abs(in[2] - out[2]);
  };
  std::mt19937 gen(5);
  double on_objects = 0, elsewhere = 0;
  int n = 0;
  for (const ImageRecord& rec : result().images) {
    const cv::Mat img = cv::imread(rec.image_path);
    ASSERT_FALSE(img.empty());
    for (const Object& o : rec.objects) {
      if (o.difficult || o.truncated || o.x2 - o.x1 < 15 || o.y2 - o.y1 < 15) continue;
      const cv::Rect box(cv::Point(static_cast<int>(o.x1), static_cast<int>(o.y1)),
                         cv::Point(static_cast<int>(o.x2 + 1), static_cast<int>(o.y2 + 1)));
      on_objects += contrast(img, box);
      const cv::Rect moved(static_cast<int>(gen() % static_cast<unsigned>(img.cols - box.width + 1)),
                           static_cast<int>(gen() % static_cast<unsigned>(img.rows - box.height + 1)), box.width,
                           box.height);
      elsewhere += contrast(img, moved);
      ++n;
    }
  }
  ASSERT_GT(n, 20);
  EXPECT_GT(on_objects / n, 2.0 * elsewhere / n)
      << "mean contrast on objects " << on_objects / n << " elsewhere " << elsewhere / n;
}

TEST(SynthDeterminism, SameSeedGivesIdenticalBytesWhateverTheThreadCount) {
  TempDir a("yolo2-synth-a"), b("yolo2-synth-b"), c("yolo2-synth-c");
  SynthOptions o;
  o.train = 8;
  o.test = 4;
  o.size = 96;
  o.seed = 42;
  o.out_dir = a.str();
  o.threads = 1;
  write_synth(o);
  o.out_dir = b.str();
  o.threads = 2;
  write_synth(o);
  const auto files_a = tree_bytes(a.path()), files_b = tree_bytes(b.path());
  ASSERT_EQ(files_a.size(), 12u * 2 + 4 * (1 + o.num_classes) + 2);  // + classes.txt and the .yolo2-synth marker
  EXPECT_TRUE(files_a == files_b);

  o.out_dir = c.str();
  o.seed = 43;
  write_synth(o);
  const auto files_c = tree_bytes(c.path());
  int different_images = 0;
  for (const auto& [path, bytes] : files_a)
    if (path.rfind("JPEGImages", 0) == 0) different_images += files_c.at(path) != bytes;
  EXPECT_EQ(different_images, 12);
}

std::vector<int> class_counts(double imbalance, uint64_t seed) {
  TempDir dir("yolo2-synth-tail");
  SynthOptions o;
  o.out_dir = dir.str();
  o.train = 300;
  o.test = 0;
  o.size = 64;
  o.seed = seed;
  o.imbalance = imbalance;
  o.num_classes = 8;
  return write_synth(o).objects_per_class;
}

TEST(SynthLongTail, ClassFrequenciesFollowTheImbalance) {
  const auto tail = class_counts(20.0, 3);
  ASSERT_EQ(tail.size(), 8u);
  EXPECT_GT(tail.front(), 5 * tail.back());
  EXPECT_GT(tail[0], tail[2]);
  EXPECT_GT(tail[2], tail[4]);
  EXPECT_GT(tail[4], tail[7]);
  EXPECT_GT(tail.back(), 0);

  const auto flat = class_counts(1.0, 3);
  const auto [lo, hi] = std::minmax_element(flat.begin(), flat.end());
  EXPECT_LT(*hi, 2 * *lo);
}

void expect_invalid(void (*change)(SynthOptions&), const std::string& option) {
  TempDir dir("yolo2-synth-bad");
  SynthOptions o;
  o.out_dir = dir.str();
  o.train = 2;
  o.test = 1;
  change(o);
  try {
    write_synth(o);
    ADD_FAILURE() << "no error for invalid " << option;
  } catch (const yolo2::Error& e) {
    EXPECT_NE(std::string(e.what()).find(option), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(dir.path())) << "files written despite invalid " << option;
}

TEST(SynthValidation, InvalidOptionsThrowNamingTheOption) {
  expect_invalid([](SynthOptions& o) { o.out_dir.clear(); }, "out_dir");
  expect_invalid([](SynthOptions& o) { o.train = 0; }, "train");
  expect_invalid([](SynthOptions& o) { o.test = -1; }, "test");
  expect_invalid([](SynthOptions& o) { o.size = 31; }, "size");
  expect_invalid([](SynthOptions& o) { o.num_classes = 5; }, "num_classes");
  expect_invalid([](SynthOptions& o) { o.num_classes = 11; }, "num_classes");
  expect_invalid([](SynthOptions& o) { o.imbalance = 0.5; }, "imbalance");
  expect_invalid([](SynthOptions& o) { o.max_objects = 0; }, "max_objects");
  expect_invalid([](SynthOptions& o) { o.jpeg_quality = 0; }, "jpeg_quality");
  expect_invalid([](SynthOptions& o) { o.threads = -1; }, "threads");
}

TEST(SynthValidation, UnwritableOutputThrowsNamingThePath) {
  TempDir dir("yolo2-synth-io");
  const std::string blocker = dir.file("not_a_folder");
  yolo2::testing::write_text(blocker, "x");
  SynthOptions o;
  o.out_dir = blocker + "/voc";
  o.train = 1;
  o.test = 0;
  try {
    write_synth(o);
    ADD_FAILURE() << "no error for an output folder under a regular file";
  } catch (const yolo2::Error& e) {
    EXPECT_NE(std::string(e.what()).find(blocker), std::string::npos) << e.what();
  }
}

TEST(SynthValidation, SmallestValidDatasetIsWritten) {
  TempDir dir("yolo2-synth-min");
  SynthOptions o;
  o.out_dir = dir.str();
  o.train = 1;
  o.test = 0;
  o.size = 32;
  o.max_objects = 1;
  o.num_classes = 6;
  const SynthResult r = write_synth(o);
  ASSERT_EQ(r.images.size(), 1u);
  EXPECT_EQ(r.images[0].objects.size(), 1u);
  EXPECT_EQ(read_lines(dir.path() / "ImageSets/Main/train.txt"), std::vector<std::string>{"000001"});
  EXPECT_TRUE(read_lines(dir.path() / "ImageSets/Main/val.txt").empty());
  EXPECT_TRUE(read_lines(dir.path() / "ImageSets/Main/test.txt").empty());
}

}  // namespace
