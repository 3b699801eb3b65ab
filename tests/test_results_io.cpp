// VOC comp4 results files: format, round trip, and errors that name file and line.
#include "yolo2/eval/results_io.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "yolo2/error.hpp"

namespace yolo2::eval {
namespace {

using yolo2::testing::read_text;
using yolo2::testing::TempDir;
using yolo2::testing::write_text;

const std::vector<std::string> kClasses = {"aeroplane", "bicycle", "diningtable"};
const std::vector<std::string> kImages = {"000001", "000004", "2008_000123"};

Detection det(int image, int label, float score, float x1, float y1, float x2, float y2) {
  return Detection{image, label, score, PixelBox{x1, y1, x2, y2}};
}

using yolo2::testing::error_of;

TEST(ResultsIo, FileNameFollowsTheDevkitPattern) {
  EXPECT_EQ(results_file_name("test", "aeroplane"), "comp4_det_test_aeroplane.txt");
  EXPECT_EQ(results_file_name("val", "dog", "comp3"), "comp3_det_val_dog.txt");
}

// Each number is the shortest decimal that reads back exactly (issue 15 item 12: a fixed 0.1 px
// moved IoUs across the threshold when a run's own files were scored again).
TEST(ResultsIo, WritesOneBasedCoordinatesThatReadBackExactly) {
  TempDir dir("yolo2-results");
  const std::vector<Detection> dets = {det(2, 1, 0.5f, 0.f, 9.25f, 99.f, 10.f),
                                       det(0, 1, 0.123456789f, 10.5f, 20.f, 30.f, 40.f)};
  const auto written = write_voc_results(dir.str(), "test", kClasses, kImages, dets);
  ASSERT_EQ(written.size(), 3u);
  EXPECT_EQ(written[1], dir.file("comp4_det_test_bicycle.txt"));
  EXPECT_EQ(read_text(written[1]),
            "2008_000123 0.5 1 10.25 100 11\n"
            "000001 0.12345679104328156 11.5 21 31 41\n");
  // Classes without detections still get a (empty) file, so reading them back is not an error.
  EXPECT_EQ(read_text(written[0]), "");
  EXPECT_TRUE(std::filesystem::exists(dir.file("comp4_det_test_diningtable.txt")));
  // No temporary files are left behind.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 3);
}

TEST(ResultsIo, RoundTripReturnsTheDetectionsToThePrintedPrecision) {
  TempDir dir("yolo2-results");
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> pos(0.f, 499.f), score(0.f, 1.f);
  std::vector<Detection> dets;
  for (int i = 0; i < 300; ++i) {
    const float x1 = pos(rng), y1 = pos(rng);
    dets.push_back(det(static_cast<int>(rng() % kImages.size()), static_cast<int>(rng() % kClasses.size()), score(rng),
                       x1, y1, x1 + pos(rng) / 4, y1 + pos(rng) / 4));
  }
  write_voc_results(dir.str(), "val", kClasses, kImages, dets);
  const std::vector<Detection> back = read_voc_results(dir.str(), "val", kClasses, kImages);
  // Reading returns class by class in file order: the input grouped by label, order kept.
  std::vector<Detection> expected = dets;
  std::stable_sort(expected.begin(), expected.end(),
                   [](const Detection& a, const Detection& b) { return a.label < b.label; });
  ASSERT_EQ(back.size(), expected.size());
  for (std::size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(back[i].image, expected[i].image) << i;
    EXPECT_EQ(back[i].label, expected[i].label) << i;
    EXPECT_NEAR(back[i].score, expected[i].score, 0.5e-6 + 1e-7) << i;
    EXPECT_NEAR(back[i].box.x1, expected[i].box.x1, 0.05 + 1e-4) << i;
    EXPECT_NEAR(back[i].box.y1, expected[i].box.y1, 0.05 + 1e-4) << i;
    EXPECT_NEAR(back[i].box.x2, expected[i].box.x2, 0.05 + 1e-4) << i;
    EXPECT_NEAR(back[i].box.y2, expected[i].box.y2, 0.05 + 1e-4) << i;
  }
}

TEST(ResultsIo, ReadsForeignFilesWithOtherSpacingAndPrecision) {
  // darknet prints "%s %f %f %f %f %f"; py-faster-rcnn 3 decimals; tabs and CRLF tolerated.
  TempDir dir("yolo2-results");
  write_text(dir.file("comp4_det_test_aeroplane.txt"),
             "000004 0.912 1 2 3.5 4\r\n\n   \n000001\t0.5\t10\t20\t30\t40\n");
  write_text(dir.file("comp4_det_test_bicycle.txt"), "");
  write_text(dir.file("comp4_det_test_diningtable.txt"), "2008_000123 1e-3 1 1 1 1");
  const auto back = read_voc_results(dir.str(), "test", kClasses, kImages);
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[0].image, 1);
  EXPECT_EQ(back[0].label, 0);
  EXPECT_FLOAT_EQ(back[0].score, 0.912f);
  EXPECT_FLOAT_EQ(back[0].box.x1, 0.f);  // 1-based 1 -> 0-based 0
  EXPECT_FLOAT_EQ(back[0].box.x2, 2.5f);
  EXPECT_EQ(back[1].image, 0);
  EXPECT_FLOAT_EQ(back[1].box.y2, 39.f);
  EXPECT_EQ(back[2].label, 2);
  EXPECT_FLOAT_EQ(back[2].score, 0.001f);
}

TEST(ResultsIo, MalformedLinesAreErrorsNamingFileAndLine) {
  TempDir dir("yolo2-results");
  write_voc_results(dir.str(), "test", kClasses, kImages, {});
  const std::string bicycle = dir.file("comp4_det_test_bicycle.txt");
  const auto read = [&] { read_voc_results(dir.str(), "test", kClasses, kImages); };

  write_text(bicycle, "000001 0.5 1 2 3 4\n000001 0.5 1 2 3\n");
  std::string m = error_of(read);
  EXPECT_NE(m.find(bicycle + ":2:"), std::string::npos) << m;
  EXPECT_NE(m.find("found 5"), std::string::npos) << m;

  write_text(bicycle, "000001 0.5 1 2 3 4 5\n");
  m = error_of(read);
  EXPECT_NE(m.find(bicycle + ":1:"), std::string::npos) << m;

  write_text(bicycle, "000001 0.5 1 2 3 4\n\n000001 high 1 2 3 4\n");
  m = error_of(read);
  EXPECT_NE(m.find(bicycle + ":3:"), std::string::npos) << m;
  EXPECT_NE(m.find("score 'high'"), std::string::npos) << m;

  write_text(bicycle, "000001 0.5 1 2 3x 4\n");
  m = error_of(read);
  EXPECT_NE(m.find("xmax '3x'"), std::string::npos) << m;

  write_text(bicycle, "000001 nan 1 2 3 4\n");
  m = error_of(read);
  EXPECT_NE(m.find("not a finite number"), std::string::npos) << m;
}

TEST(ResultsIo, UnknownImageIdIsAnErrorNamingFileLineAndId) {
  TempDir dir("yolo2-results");
  write_voc_results(dir.str(), "test", kClasses, kImages, {});
  const std::string file = dir.file("comp4_det_test_diningtable.txt");
  write_text(file, "000001 0.5 1 2 3 4\n999999 0.5 1 2 3 4\n");
  const std::string m = error_of([&] { read_voc_results(dir.str(), "test", kClasses, kImages); });
  EXPECT_NE(m.find(file + ":2:"), std::string::npos) << m;
  EXPECT_NE(m.find("'999999'"), std::string::npos) << m;
}

TEST(ResultsIo, MissingFileIsAnErrorUnlessAllowed) {
  TempDir dir("yolo2-results");
  write_voc_results(dir.str(), "test", kClasses, kImages, {det(0, 0, 0.9f, 1, 2, 3, 4)});
  std::filesystem::remove(dir.file("comp4_det_test_bicycle.txt"));
  const std::string m = error_of([&] { read_voc_results(dir.str(), "test", kClasses, kImages); });
  EXPECT_NE(m.find("comp4_det_test_bicycle.txt"), std::string::npos) << m;
  EXPECT_NE(m.find("missing"), std::string::npos) << m;

  ReadResultsOptions options;
  options.allow_missing_files = true;
  std::vector<std::string> missing;
  const auto back = read_voc_results(dir.str(), "test", kClasses, kImages, options, &missing);
  EXPECT_EQ(back.size(), 1u);
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0], dir.file("comp4_det_test_bicycle.txt"));
  // The wrong split is the typical cause: every file is then missing.
  EXPECT_THROW(read_voc_results(dir.str(), "val", kClasses, kImages), Error);
}

TEST(ResultsIo, WriteRejectsBadDetectionsAndNames) {
  TempDir dir("yolo2-results");
  const auto write = [&](const std::vector<Detection>& dets) {
    return error_of([&] { write_voc_results(dir.str(), "test", kClasses, kImages, dets); });
  };
  EXPECT_NE(write({det(3, 0, 0.5f, 0, 0, 1, 1)}).find("image 3"), std::string::npos);
  EXPECT_NE(write({det(0, 3, 0.5f, 0, 0, 1, 1)}).find("label 3"), std::string::npos);
  EXPECT_NE(write({det(0, 0, NAN, 0, 0, 1, 1)}).find("non-finite"), std::string::npos);
  EXPECT_THROW(write_voc_results(dir.str(), "test", kClasses, {"a b"}, {}), Error);
  EXPECT_THROW(write_voc_results(dir.str(), "test", {"bad/name"}, kImages, {}), Error);
  EXPECT_THROW(read_voc_results(dir.str(), "test", kClasses, {"x", "x"}), Error);
}

TEST(ResultsIo, RewritingReplacesTheOldFile) {
  TempDir dir("yolo2-results");
  write_voc_results(dir.str(), "test", {"dog"}, kImages, {det(0, 0, 0.9f, 1, 2, 3, 4), det(1, 0, 0.8f, 1, 2, 3, 4)});
  write_voc_results(dir.str(), "test", {"dog"}, kImages, {det(2, 0, 0.7f, 1, 2, 3, 4)});
  const auto back = read_voc_results(dir.str(), "test", {"dog"}, kImages);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].image, 2);
}

}  // namespace
}  // namespace yolo2::eval
