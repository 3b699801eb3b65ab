// The line-plot renderer (util/plot.hpp) the training curves and PR curves are drawn with: series
// colours and size, log axes, bad inputs, lossless PNG files, and the class palette.
#include "yolo2/util/plot.hpp"

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cmath>
#include <optional>
#include <string>

#include "test_util.hpp"
#include "yolo2/error.hpp"

namespace yolo2 {
namespace {

using yolo2::testing::count_pixels_of;

TEST(LinePlot, DrawsEachSeriesInItsColourInsideTheRequestedSize) {
  util::Series a{"a", {0, 1, 2, 3}, {1, 3, 2, 4}, std::nullopt, 2};
  util::Series b{"b", {0, 3}, {4, 1}, cv::Scalar(0, 0, 255), 2};
  util::PlotOptions options;
  options.title = "t";
  options.x_label = "x";
  options.y_label = "y";
  options.width = 400;
  options.height = 300;
  const cv::Mat image = util::render_line_plot({a, b}, options);
  EXPECT_EQ(image.cols, 400);
  EXPECT_EQ(image.rows, 300);
  EXPECT_EQ(image.type(), CV_8UC3);
  EXPECT_GT(count_pixels_of(image, util::palette_colour(0)), 100);  // default colour of series 0
  EXPECT_GT(count_pixels_of(image, cv::Scalar(0, 0, 255)), 100);
}

TEST(LinePlot, LogAxisSkipsNonPositiveValuesAndEmptyInputStillRenders) {
  util::PlotOptions options;
  options.log_y = true;
  const util::Series s{"loss", {0, 1, 2, 3}, {10, 0, -1, 0.1}, std::nullopt, 2};
  EXPECT_FALSE(util::render_line_plot({s}, options).empty());
  EXPECT_FALSE(util::render_line_plot({}, util::PlotOptions{}).empty());
}

TEST(LinePlot, BadInputsAreErrors) {
  util::PlotOptions options;
  EXPECT_THROW(util::render_line_plot({util::Series{"s", {1, 2}, {1}, std::nullopt, 2}}, options), Error);
  options.x_range = util::AxisRange{1, 1};
  EXPECT_THROW(util::render_line_plot({}, options), Error);
  options.x_range.reset();
  options.log_y = true;
  options.y_range = util::AxisRange{0, 1};
  EXPECT_THROW(util::render_line_plot({}, options), Error);
  options = util::PlotOptions{};
  options.width = 50;
  EXPECT_THROW(util::render_line_plot({}, options), Error);
  EXPECT_THROW(util::save_line_plot("", {}, util::PlotOptions{}), Error);
}

TEST(LinePlot, SavedFileDecodesToTheRenderedImage) {
  yolo2::testing::TempDir dir("yolo2-plots");
  const util::Series s{"s", {0, 1}, {0, 1}, std::nullopt, 2};
  const std::string path = dir.file("sub/plot.png");
  util::save_line_plot(path, {s}, util::PlotOptions{});
  const cv::Mat back = cv::imread(path);
  const cv::Mat rendered = util::render_line_plot({s}, util::PlotOptions{});
  ASSERT_EQ(back.size(), rendered.size());
  EXPECT_EQ(cv::norm(back, rendered, cv::NORM_INF), 0.0);  // PNG is lossless
}

TEST(Palette, FirstTwentyColoursAreDistinct) {
  for (int i = 0; i < 24; ++i) {
    for (int j = 0; j < i; ++j) {
      const cv::Scalar a = util::palette_colour(i), b = util::palette_colour(j);
      EXPECT_GT(std::abs(a[0] - b[0]) + std::abs(a[1] - b[1]) + std::abs(a[2] - b[2]), 40) << i << " " << j;
    }
  }
}

}  // namespace
}  // namespace yolo2
