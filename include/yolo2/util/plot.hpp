// A small OpenCV line-plot renderer: PR curves, loss curves, mAP over training.
// Not a plotting library: axes, ticks with numeric labels, grid, legend, title, and nothing else.
#pragma once

#include <opencv2/core.hpp>

#include <optional>
#include <string>
#include <vector>

namespace yolo2::util {

// The index-th of a fixed set of colours that stay apart on a white background (BGR, as OpenCV
// draws); the first 10 are matplotlib's tab10. Beyond the table, hues step by the golden angle.
// Also the per-class colour of drawn detections, so a class looks the same everywhere.
cv::Scalar palette_colour(int index);

struct Series {
  std::string name;                  // legend entry; an empty name is left out of the legend
  std::vector<double> x, y;          // same length; non-finite points (and y <= 0 on a log axis) break the line
  std::optional<cv::Scalar> colour;  // BGR; palette_colour(series index) when unset
  int thickness = 2;
};

struct AxisRange {
  double min = 0, max = 1;
};

struct PlotOptions {
  std::string title, x_label, y_label;
  int width = 800, height = 600;     // pixels, at least 200 x 150
  std::optional<AxisRange> x_range;  // fixed range; otherwise the data's, widened to ticks
  std::optional<AxisRange> y_range;
  bool log_y = false;  // base-10 y axis; a fixed y_range must then be > 0
};

// Renders the plot into an 8-bit BGR image [height, width]. Throws yolo2::Error for a series
// whose x and y differ in length, an empty or inverted fixed range, or a size below the minimum.
cv::Mat render_line_plot(const std::vector<Series>& series, const PlotOptions& options);

// render_line_plot encoded as PNG and written atomically (temporary file in the same folder,
// then rename); the folder is created when missing. Throws yolo2::Error on failure.
void save_line_plot(const std::string& png_path, const std::vector<Series>& series, const PlotOptions& options);

}  // namespace yolo2::util
