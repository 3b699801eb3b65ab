// OpenCV line plots (see plot.hpp). Layout: title band on top, tick labels and axis labels in the
// left and bottom margins, curves clipped to the plot area, legend in the emptiest corner.
#include "yolo2/util/plot.hpp"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "yolo2/error.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::util {
namespace {

constexpr int kMinWidth = 200, kMinHeight = 150;
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr double kTickFontScale = 0.45, kLabelFontScale = 0.55, kTitleFontScale = 0.65;
constexpr double kLegendFontScale = 0.45;
constexpr int kLegendRow = 18;
constexpr int kTargetTicks = 6;
constexpr int kMaxTicks = 64;  // guards the tick loops against degenerate (denormal) spans
// Sub-pixel drawing: OpenCV takes fixed-point coordinates with this many fractional bits.
constexpr int kShift = 4;
constexpr double kShiftScale = 1 << kShift;
// Keeps far off-screen points inside int range after the fixed-point scaling.
constexpr double kCoordinateLimit = 1e5;

const cv::Scalar kBlack(0, 0, 0), kWhite(255, 255, 255), kGrid(225, 225, 225), kFrame(90, 90, 90);

// BGR. tab10 first, then ten darker/saturated colours that stay readable on white.
constexpr std::array<std::array<int, 3>, 20> kPalette = {{
    {180, 119, 31},  {14, 127, 255}, {44, 160, 44},  {40, 39, 214}, {189, 103, 148}, {75, 86, 140}, {194, 119, 227},
    {127, 127, 127}, {34, 189, 188}, {207, 190, 23}, {0, 0, 128},   {117, 0, 0},     {0, 128, 128}, {144, 153, 70},
    {230, 50, 240},  {75, 180, 60},  {216, 99, 67},  {75, 25, 230}, {180, 30, 145},  {36, 99, 154},
}};

struct Axis {
  double lo = 0, hi = 1;  // in axis units (log10 of the value on a log axis)
  bool log = false;
  std::vector<double> ticks;  // axis units
  double step = 0.2;          // linear tick step (axis units); decides the label decimals
};

double nice_step(double span) {
  const double raw = span / kTargetTicks;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / magnitude;
  const double nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  return nice * magnitude;
}

void linear_ticks(Axis& axis) {
  axis.step = nice_step(axis.hi - axis.lo);
  const double first = std::ceil(axis.lo / axis.step - 1e-9);
  for (double k = first; static_cast<int>(axis.ticks.size()) < kMaxTicks; k += 1) {
    const double t = k * axis.step;
    if (t > axis.hi + axis.step * 1e-9) break;
    axis.ticks.push_back(std::abs(t) < axis.step * 1e-9 ? 0.0 : t);
  }
}

void log_ticks(Axis& axis) {
  const double span = axis.hi - axis.lo;
  const double decade_step = std::max(1.0, std::ceil(span / kTargetTicks));
  for (double e = std::ceil(axis.lo - 1e-9); e <= axis.hi + 1e-9 && static_cast<int>(axis.ticks.size()) < kMaxTicks;
       e += decade_step) {
    axis.ticks.push_back(e);
  }
  if (span <= 2.0) {  // few decades: add 2x and 5x ticks
    for (double e = std::floor(axis.lo); e <= axis.hi; e += 1) {
      for (double m : {2.0, 5.0}) {
        const double t = e + std::log10(m);
        if (t >= axis.lo - 1e-9 && t <= axis.hi + 1e-9) axis.ticks.push_back(t);
      }
    }
    std::sort(axis.ticks.begin(), axis.ticks.end());
  }
}

// Axis from the data (values already in axis units) or from a fixed range (in value units).
Axis make_axis(const std::vector<double>& values, const std::optional<AxisRange>& fixed, bool log, const char* name) {
  Axis axis;
  axis.log = log;
  if (fixed) {
    if (!(std::isfinite(fixed->min) && std::isfinite(fixed->max) && fixed->min < fixed->max)) {
      throw Error(std::string("plot: the fixed ") + name + " range must be finite with min < max");
    }
    if (log && fixed->min <= 0) {
      throw Error(std::string("plot: a log ") + name + " range must be positive");
    }
    axis.lo = log ? std::log10(fixed->min) : fixed->min;
    axis.hi = log ? std::log10(fixed->max) : fixed->max;
    if (log) {
      log_ticks(axis);
    } else {
      linear_ticks(axis);
    }
    return axis;
  }
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : values) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (!(lo <= hi)) {  // no finite data
    lo = 0;
    hi = 1;
  }
  if (log) {
    axis.lo = std::floor(lo);
    axis.hi = std::max(std::ceil(hi), axis.lo + 1);
    log_ticks(axis);
    return axis;
  }
  if (!std::isfinite(hi - lo)) throw Error(std::string("plot: the ") + name + " data span overflows");
  if (lo == hi) {  // a flat series: centre it
    const double pad = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double step = nice_step(hi - lo);
  axis.lo = std::floor(lo / step + 1e-9) * step;
  axis.hi = std::ceil(hi / step - 1e-9) * step;
  linear_ticks(axis);
  return axis;
}

std::string format_number(double value, int decimals) {
  char buffer[64];
  const auto r = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::fixed, decimals);
  return std::string(buffer, r.ptr);
}

std::string format_general(double value) {
  char buffer[64];
  const auto r = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::general, 3);
  return std::string(buffer, r.ptr);
}

std::string tick_label(const Axis& axis, double t) {
  if (axis.log) {
    const double value = std::pow(10.0, t);
    const bool decade = std::abs(t - std::round(t)) < 1e-9;
    if (decade && std::abs(t) >= 4) return "1e" + std::to_string(static_cast<int>(std::round(t)));
    return format_general(value);
  }
  const double largest = std::max(std::abs(axis.lo), std::abs(axis.hi));
  if (largest >= 1e6 || axis.step < 1e-4) return format_general(t);
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(axis.step) + 1e-9)));
  return format_number(t, decimals);
}

cv::Size text_size(const std::string& text, double scale, int* baseline = nullptr) {
  int base = 0;
  const cv::Size size = cv::getTextSize(text, kFont, scale, 1, &base);
  if (baseline) *baseline = base;
  return size;
}

void put_text(cv::Mat& image, const std::string& text, cv::Point origin, double scale,
              const cv::Scalar& colour = kBlack) {
  cv::putText(image, text, origin, kFont, scale, colour, 1, cv::LINE_AA);
}

// OpenCV cannot draw rotated text: render horizontally, then rotate the patch.
void put_vertical_text(cv::Mat& image, const std::string& text, int centre_x, int centre_y, double scale) {
  int baseline = 0;
  const cv::Size size = text_size(text, scale, &baseline);
  cv::Mat patch(size.height + baseline + 4, size.width + 4, CV_8UC3, kWhite);
  put_text(patch, text, cv::Point(2, size.height + 2), scale);
  cv::rotate(patch, patch, cv::ROTATE_90_COUNTERCLOCKWISE);
  cv::Rect target(centre_x - patch.cols / 2, centre_y - patch.rows / 2, patch.cols, patch.rows);
  const cv::Rect clipped = target & cv::Rect(0, 0, image.cols, image.rows);
  if (clipped.empty()) return;
  patch(cv::Rect(clipped.x - target.x, clipped.y - target.y, clipped.width, clipped.height)).copyTo(image(clipped));
}

struct Mapper {
  Axis x, y;
  cv::Rect area;  // plot area in image pixels
  // Pixel coordinates relative to the plot area (so drawing into the area's ROI clips).
  double px(double ax) const { return (ax - x.lo) / (x.hi - x.lo) * (area.width - 1); }
  double py(double ay) const { return (area.height - 1) - (ay - y.lo) / (y.hi - y.lo) * (area.height - 1); }
};

cv::Point fixed_point(double px, double py) {
  const auto clamp = [](double v) { return std::clamp(v, -kCoordinateLimit, kCoordinateLimit); };
  return cv::Point(static_cast<int>(std::lround(clamp(px) * kShiftScale)),
                   static_cast<int>(std::lround(clamp(py) * kShiftScale)));
}

bool usable(double x, double y, bool log_y) { return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0); }

void draw_series(cv::Mat& area, const Series& s, const cv::Scalar& colour, const Mapper& m) {
  bool have_previous = false;
  cv::Point previous;
  int run = 0;  // points in the current unbroken run
  for (std::size_t i = 0; i < s.x.size(); ++i) {
    if (!usable(s.x[i], s.y[i], m.y.log)) {
      if (run == 1) cv::circle(area, previous, (s.thickness + 1) << kShift, colour, -1, cv::LINE_AA, kShift);
      have_previous = false;
      run = 0;
      continue;
    }
    const cv::Point p = fixed_point(m.px(s.x[i]), m.py(m.y.log ? std::log10(s.y[i]) : s.y[i]));
    if (have_previous) cv::line(area, previous, p, colour, s.thickness, cv::LINE_AA, kShift);
    previous = p;
    have_previous = true;
    ++run;
  }
  // A lone point has no segment: mark it so it is visible.
  if (run == 1) cv::circle(area, previous, (s.thickness + 1) << kShift, colour, -1, cv::LINE_AA, kShift);
}

// The legend goes to whichever corner of the plot area covers the fewest data points.
cv::Rect legend_corner(const cv::Size& size, const std::vector<Series>& series, const Mapper& m) {
  const int pad = 8;
  const int right = m.area.width - size.width - pad, bottom = m.area.height - size.height - pad;
  const std::array<cv::Point, 4> corners = {cv::Point(right, pad), cv::Point(pad, pad), cv::Point(right, bottom),
                                            cv::Point(pad, bottom)};
  std::array<long, 4> counts{};
  for (const Series& s : series) {
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!usable(s.x[i], s.y[i], m.y.log)) continue;
      const double px = m.px(s.x[i]), py = m.py(m.y.log ? std::log10(s.y[i]) : s.y[i]);
      for (std::size_t c = 0; c < corners.size(); ++c) {
        if (px >= corners[c].x && px < corners[c].x + size.width && py >= corners[c].y &&
            py < corners[c].y + size.height) {
          ++counts[c];
        }
      }
    }
  }
  const std::size_t best = static_cast<std::size_t>(std::min_element(counts.begin(), counts.end()) -
                                                    counts.begin());  // first minimum: top right
  return cv::Rect(corners[best], size);
}

void draw_legend(cv::Mat& area, const std::vector<Series>& series, const std::vector<cv::Scalar>& colours,
                 const Mapper& m) {
  std::vector<std::size_t> named;
  for (std::size_t i = 0; i < series.size(); ++i) {
    if (!series[i].name.empty()) named.push_back(i);
  }
  if (named.empty()) return;
  const int max_rows = std::max(1, (area.rows - 24) / kLegendRow);
  std::vector<std::pair<std::string, int>> rows;  // text, series index or -1
  const bool truncated = static_cast<int>(named.size()) > max_rows;
  const std::size_t shown = truncated ? static_cast<std::size_t>(max_rows - 1) : named.size();
  for (std::size_t k = 0; k < shown; ++k) rows.emplace_back(series[named[k]].name, static_cast<int>(named[k]));
  if (truncated) rows.emplace_back("(+" + std::to_string(named.size() - shown) + " more)", -1);

  const int sample = 24, gap = 6;
  int text_width = 0;
  for (const auto& row : rows) text_width = std::max(text_width, text_size(row.first, kLegendFontScale).width);
  const cv::Size size(gap + sample + gap + text_width + gap, static_cast<int>(rows.size()) * kLegendRow + gap);
  const cv::Rect box = legend_corner(size, series, m);
  cv::rectangle(area, box, kWhite, cv::FILLED);
  cv::rectangle(area, box, kFrame, 1);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const int baseline_y = box.y + gap / 2 + static_cast<int>(r + 1) * kLegendRow - 5;
    if (rows[r].second >= 0) {
      const int mid_y = baseline_y - 4;
      cv::line(area, cv::Point(box.x + gap, mid_y), cv::Point(box.x + gap + sample, mid_y),
               colours[static_cast<std::size_t>(rows[r].second)], 2, cv::LINE_AA);
    }
    put_text(area, rows[r].first, cv::Point(box.x + gap + sample + gap, baseline_y), kLegendFontScale);
  }
}

// Grid lines and tick labels around the plot area.
void draw_grid(cv::Mat& image, const Mapper& m) {
  for (double t : m.x.ticks) {
    const int x = m.area.x + static_cast<int>(std::lround(m.px(t)));
    cv::line(image, cv::Point(x, m.area.y), cv::Point(x, m.area.br().y - 1), kGrid, 1);
    cv::line(image, cv::Point(x, m.area.br().y - 1), cv::Point(x, m.area.br().y + 4), kFrame, 1);
    const std::string label = tick_label(m.x, t);
    const cv::Size size = text_size(label, kTickFontScale);
    put_text(image, label, cv::Point(x - size.width / 2, m.area.br().y + 8 + size.height), kTickFontScale);
  }
  for (double t : m.y.ticks) {
    const int y = m.area.y + static_cast<int>(std::lround(m.py(t)));
    cv::line(image, cv::Point(m.area.x, y), cv::Point(m.area.br().x - 1, y), kGrid, 1);
    cv::line(image, cv::Point(m.area.x - 5, y), cv::Point(m.area.x, y), kFrame, 1);
    const std::string label = tick_label(m.y, t);
    const cv::Size size = text_size(label, kTickFontScale);
    put_text(image, label, cv::Point(m.area.x - 8 - size.width, y + size.height / 2), kTickFontScale);
  }
}

// The title above the plot, the axis labels below and to the left of it.
void draw_titles(cv::Mat& image, const PlotOptions& options, const Mapper& m) {
  if (!options.title.empty()) {
    const cv::Size size = text_size(options.title, kTitleFontScale);
    put_text(image, options.title, cv::Point((options.width - size.width) / 2, 12 + size.height), kTitleFontScale);
  }
  if (!options.x_label.empty()) {
    const cv::Size size = text_size(options.x_label, kLabelFontScale);
    put_text(image, options.x_label, cv::Point(m.area.x + (m.area.width - size.width) / 2, options.height - 10),
             kLabelFontScale);
  }
  if (!options.y_label.empty()) {
    put_vertical_text(image, options.y_label, 16, m.area.y + m.area.height / 2, kLabelFontScale);
  }
}

}  // namespace

cv::Scalar palette_colour(int index) {
  if (index < 0) index = -index;
  if (static_cast<std::size_t>(index) < kPalette.size()) {
    const auto& c = kPalette[static_cast<std::size_t>(index)];
    return cv::Scalar(c[0], c[1], c[2]);
  }
  // Golden-angle hue steps keep later colours apart; fixed saturation and value stay readable.
  const double hue = std::fmod(static_cast<double>(index) * 137.50776405, 360.0);
  cv::Mat hsv(1, 1, CV_8UC3, cv::Scalar(hue / 2.0, 200, 200)), bgr;  // OpenCV hue is 0..180
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
  const cv::Vec3b v = bgr.at<cv::Vec3b>(0, 0);
  return cv::Scalar(v[0], v[1], v[2]);
}

cv::Mat render_line_plot(const std::vector<Series>& series, const PlotOptions& options) {
  if (options.width < kMinWidth || options.height < kMinHeight) {
    throw Error("plot: size " + std::to_string(options.width) + "x" + std::to_string(options.height) +
                " is below the minimum " + std::to_string(kMinWidth) + "x" + std::to_string(kMinHeight));
  }
  std::vector<double> xs, ys;
  for (std::size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    if (s.x.size() != s.y.size()) {
      throw Error("plot: series " + std::to_string(i) + " ('" + s.name + "') has " + std::to_string(s.x.size()) +
                  " x values but " + std::to_string(s.y.size()) + " y values");
    }
    for (std::size_t k = 0; k < s.x.size(); ++k) {
      if (!usable(s.x[k], s.y[k], options.log_y)) continue;
      xs.push_back(s.x[k]);
      ys.push_back(options.log_y ? std::log10(s.y[k]) : s.y[k]);
    }
  }
  Mapper m;
  m.x = make_axis(xs, options.x_range, false, "x");
  m.y = make_axis(ys, options.y_range, options.log_y, "y");

  cv::Mat image(options.height, options.width, CV_8UC3, kWhite);
  int tick_width = 0;
  for (double t : m.y.ticks) tick_width = std::max(tick_width, text_size(tick_label(m.y, t), kTickFontScale).width);
  const int left = 14 + (options.y_label.empty() ? 0 : 22) + tick_width + 8;
  const int top = options.title.empty() ? 16 : 42;
  const int bottom = 28 + (options.x_label.empty() ? 0 : 24);
  const int right = 24;
  m.area = cv::Rect(left, top, options.width - left - right, options.height - top - bottom);
  if (m.area.width < 40 || m.area.height < 40) throw Error("plot: no room left for the plot area");

  draw_grid(image, m);

  // Curves, clipped by drawing into the plot area's ROI.
  cv::Mat area = image(m.area);
  std::vector<cv::Scalar> colours;
  for (std::size_t i = 0; i < series.size(); ++i) {
    colours.push_back(series[i].colour.value_or(palette_colour(static_cast<int>(i))));
    draw_series(area, series[i], colours.back(), m);
  }
  draw_legend(area, series, colours, m);
  cv::rectangle(image, m.area, kFrame, 1);

  draw_titles(image, options, m);
  return image;
}

void save_line_plot(const std::string& png_path, const std::vector<Series>& series, const PlotOptions& options) {
  if (png_path.empty()) throw Error("plot: empty output path");
  const cv::Mat image = render_line_plot(series, options);
  std::vector<uchar> bytes;
  if (!cv::imencode(".png", image, bytes)) throw Error("plot: PNG encoding failed for " + png_path);
  write_file_atomic(png_path, [&bytes](const ByteSink& sink) { sink(bytes.data(), bytes.size()); });
}

}  // namespace yolo2::util
