// What the verbs used to work out themselves, now library calls a test can reach: the class names
// of a bare VOC root, each rank's command line under --nproc, and detect's file handling and JSON.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include <filesystem>

#include "test_util.hpp"
#include "yolo2/data/dataset.hpp"
#include "yolo2/data/image_io.hpp"
#include "yolo2/eval/detect_files.hpp"
#include "yolo2/runtime/launch.hpp"

namespace fs = std::filesystem;
using namespace yolo2;
using namespace yolo2::testing;

// A listed set wins, then the root's classes.txt (trimmed as read_class_names reads it), then the
// fallback.
TEST(ClassNamesForRoot, ListedThenClassesTxtThenFallback) {
  TempDir dir;
  fs::create_directories(dir.file("root"));
  const std::vector<std::string> fallback{"x", "y"};
  EXPECT_EQ(data::class_names_for_root({dir.file("root"), "test"}, {}, fallback), fallback);
  write_text(dir.file("root/classes.txt"), "a\r\nb \n\n");
  EXPECT_EQ(data::class_names_for_root({dir.file("root"), "test"}, {}, fallback), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(data::class_names_for_root({dir.file("root"), "test"}, {"c"}, fallback), (std::vector<std::string>{"c"}));
}

// --nproc in either spelling is dropped (its value too), everything else kept in order, and the
// job's threads are shared (at least one each).
TEST(RankCommandLine, DropsNprocAndSharesTheThreads) {
  const std::vector<std::string> args{"train", "--config", "a.yaml", "--nproc", "4", "--set", "train.lr=0.1"};
  EXPECT_EQ(
      runtime::rank_command_line(args, 8, 4),
      (std::vector<std::string>{"train", "--config", "a.yaml", "--set", "train.lr=0.1", "--set", "runtime.threads=2"}));
  EXPECT_EQ(runtime::rank_command_line({"pretrain", "--nproc=3", "--no-eval"}, 2, 3),
            (std::vector<std::string>{"pretrain", "--no-eval", "--set", "runtime.threads=1"}));
}

// A folder gives its images (any case of .jpg/.jpeg/.png/.bmp) sorted; outputs that would replace
// an input or cannot be written are refused before any work; the JSON follows the documented
// schema, with an unreadable image's error in its place.
TEST(DetectFiles, ListsChecksAndReports) {
  TempDir dir;
  fs::create_directories(dir.file("in"));
  const cv::Mat img(8, 8, CV_8UC3, cv::Scalar(1, 2, 3));
  for (const char* f : {"b.PNG", "a.jpg", "c.JPEG"}) cv::imwrite(dir.file(std::string("in/") + f), img);
  write_text(dir.file("in/notes.txt"), "x");
  const auto files = eval::list_detect_images(dir.file("in"));
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(fs::path(files[0]).filename(), "a.jpg");
  EXPECT_EQ(fs::path(files[2]).filename(), "c.JPEG");
  EXPECT_CONTAINS(error_of([&] { eval::list_detect_images(dir.file("none")); }), "no such image or folder");
  // A symlink loop or a link to nothing under an image's name is listed (detect then names it and goes
  // on with the others); one under another name is passed over; neither ends the listing.
  fs::create_directories(dir.file("links"));
  cv::imwrite(dir.file("links/a.jpg"), img);
  fs::create_symlink("loop2.jpg", dir.file("links/loop1.jpg"));
  fs::create_symlink("loop1.jpg", dir.file("links/loop2.jpg"));
  fs::create_symlink("gone.png", dir.file("links/dangling.png"));
  fs::create_symlink("loop4", dir.file("links/loop3"));
  fs::create_symlink("loop3", dir.file("links/loop4"));
  const auto linked = eval::list_detect_images(dir.file("links"));
  ASSERT_EQ(linked.size(), 4u);
  EXPECT_EQ(fs::path(linked[0]).filename(), "a.jpg");
  EXPECT_EQ(fs::path(linked[1]).filename(), "dangling.png");
  EXPECT_CONTAINS(error_of([&] { data::read_image_file(linked[2]); }), linked[2] + ": cannot read");
  EXPECT_CONTAINS(error_of([&] { data::read_image_file(linked[1]); }), linked[1] + ": cannot read");
  EXPECT_CONTAINS(error_of([&] { eval::check_detect_outputs("", dir.file("in"), dir.file("in"), files); }),
                  "--output is the input folder");
  EXPECT_CONTAINS(error_of([&] { eval::check_detect_outputs("", dir.file("in"), files[0], {files[0]}); }),
                  "would replace that image itself");
  EXPECT_CONTAINS(error_of([&] { eval::check_detect_outputs(dir.file("in"), "", dir.file("in"), files); }),
                  "--json names a folder");
  EXPECT_CONTAINS(error_of([&] { eval::check_detect_outputs(dir.file("no/d.json"), "", dir.file("in"), files); }),
                  "cannot write the JSON there");
  eval::check_detect_outputs(dir.file("d.json"), dir.file("out"), dir.file("in"), files);  // fine
  eval::ImageDetections ok;
  ok.file = files[0], ok.width = 8, ok.height = 6;
  eval::Detection d;
  d.label = 1, d.score = 0.5f, d.box = {1, 2, 3, 4};
  ok.detections = {d};
  eval::ImageDetections bad;
  bad.file = files[1], bad.error = "broken";
  const auto j = nlohmann::json::parse(eval::detections_json({ok, bad}, {"cat", "dog"}));
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["image"], files[0]);
  EXPECT_EQ(j[0]["width"], 8);
  EXPECT_EQ(j[0]["height"], 6);
  EXPECT_EQ(j[0]["detections"][0]["class"], "dog");
  EXPECT_EQ(j[0]["detections"][0]["label"], 1);
  EXPECT_DOUBLE_EQ(j[0]["detections"][0]["score"].get<double>(), 0.5);
  EXPECT_EQ(j[0]["detections"][0]["box"], nlohmann::json({1.0, 2.0, 3.0, 4.0}));
  EXPECT_EQ(j[1], nlohmann::json({{"image", files[1]}, {"error", "broken"}}));
}
