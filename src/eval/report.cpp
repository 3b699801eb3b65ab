// PR-curve PNGs for an evaluation (see report.hpp).
#include "yolo2/eval/report.hpp"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "yolo2/util/plot.hpp"

namespace yolo2::eval {
namespace {

constexpr int kClassPlotWidth = 640, kClassPlotHeight = 480;
constexpr int kSummaryWidth = 1000, kSummaryHeight = 750;
// Headroom above precision 1 so a curve along the top stays visible inside the frame.
constexpr util::AxisRange kRecallRange{0.0, 1.0}, kPrecisionRange{0.0, 1.05};

std::string fixed(double value, int decimals) {
  char buffer[64];
  const auto r = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::fixed, decimals);
  return std::string(buffer, r.ptr);
}

std::string file_safe(const std::string& name) {
  std::string out = name;
  for (char& c : out) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) c = '_';
  }
  return out.empty() ? "_" : out;
}

std::string protocol(const MapResult& result) {
  return std::string(to_string(result.metric)) + ", IoU " + (result.inclusive_threshold ? ">= " : "> ") +
         fixed(result.iou_threshold, 2);
}

// The curve starts at recall 0 with the first point's precision, so a curve whose first
// detection is a TP visibly begins on the precision axis.
util::Series pr_series(const ClassResult& c, int colour_index, const std::string& name) {
  util::Series s;
  s.name = name;
  s.colour = util::palette_colour(colour_index);
  if (!c.recall.empty()) {
    s.x.reserve(c.recall.size() + 1);
    s.y.reserve(c.recall.size() + 1);
    s.x.push_back(0.0);
    s.y.push_back(c.precision.front());
    s.x.insert(s.x.end(), c.recall.begin(), c.recall.end());
    s.y.insert(s.y.end(), c.precision.begin(), c.precision.end());
  }
  return s;
}

util::PlotOptions pr_options(std::string title, int width, int height) {
  util::PlotOptions o;
  o.title = std::move(title);
  o.x_label = "recall";
  o.y_label = "precision";
  o.width = width;
  o.height = height;
  o.x_range = kRecallRange;
  o.y_range = kPrecisionRange;
  return o;
}

}  // namespace

std::vector<std::string> save_pr_plots(const MapResult& result, const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> written;
  for (std::size_t k = 0; k < result.per_class.size(); ++k) {
    const ClassResult& c = result.per_class[k];
    if (std::isnan(c.ap)) continue;
    const int colour = static_cast<int>(k);  // class colour, as in drawn detections
    const std::string path = (fs::path(dir) / ("pr_" + file_safe(c.name) + ".png")).string();
    util::save_line_plot(path, {pr_series(c, colour, "")},
                         pr_options(c.name + ": AP " + fixed(c.ap, 4) + " (" + protocol(result) + ")", kClassPlotWidth,
                                    kClassPlotHeight));
    written.push_back(path);
  }
  written.push_back((fs::path(dir) / "pr_summary.png").string());
  save_pr_summary(result, written.back());
  return written;
}

void save_pr_summary(const MapResult& result, const std::string& path) {
  std::vector<util::Series> summary;
  for (std::size_t k = 0; k < result.per_class.size(); ++k) {
    const ClassResult& c = result.per_class[k];
    if (std::isnan(c.ap)) continue;
    summary.push_back(pr_series(c, static_cast<int>(k), c.name + " " + fixed(c.ap, 3)));
    summary.back().thickness = 1;  // up to 20 overlapping curves
  }
  const std::string map_text = std::isnan(result.map) ? "n/a" : fixed(result.map, 4);
  util::save_line_plot(path, summary,
                       pr_options("mAP " + map_text + " over " + std::to_string(result.evaluated_classes) +
                                      " classes (" + protocol(result) + ")",
                                  kSummaryWidth, kSummaryHeight));
}

}  // namespace yolo2::eval
