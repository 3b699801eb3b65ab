// Synthetic VOC-format dataset: shapes on cluttered backgrounds, written exactly as VOCdevkit
// lays out VOC2007 so that the real-data code path reads it unchanged.
#include "yolo2/data/synth.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <pugixml.hpp>

#include "synth_forms.hpp"
#include "yolo2/data/voc.hpp"
#include "yolo2/error.hpp"

namespace yolo2::data {
namespace {

namespace fs = std::filesystem;

constexpr double kPi = 3.14159265358979323846;
constexpr int kTinySide = 12;             // boxes whose longer side is below this are difficult
constexpr double kHiddenDifficult = 0.6;  // hidden fraction above which an object is difficult
constexpr double kHiddenDropped = 0.9;    // practically invisible: drawn but not annotated
constexpr int kMinVisiblePixels = 12;
constexpr int kPolyShift = 3;  // sub-pixel vertices keep tiny shapes recognisable
constexpr double kPolyScale = 1 << kPolyShift;
constexpr int kMinContrast = 120;  // L1 distance of an object's colour to what it covers
const char* const kSplits[] = {"train", "val", "trainval", "test"};
// The first 10 are the detection classes; the classification set (--classification) adds the rest.
const char* const kShapeNames[] = {"square",  "circle",    "triangle",        "star",  "ring",     "cross",
                                   "hexagon", "diamond",   "ellipse_outline", "arrow", "pentagon", "trapezoid",
                                   "chevron", "semicircle"};
constexpr int kDetectionShapes = 10;
constexpr int kAllShapes = 14;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// splitmix64 as a stream; uniforms are derived by hand because std:: distributions differ
// between standard libraries and the dataset must be the same everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int below(int n) { return static_cast<int>(((next() >> 32) * static_cast<uint64_t>(n)) >> 32); }
  bool chance(double p) { return uniform() < p; }
  cv::Scalar color() { return cv::Scalar(below(256), below(256), below(256)); }

 private:
  uint64_t state_;
};

// Seeds are hashed twice so that neighbouring seeds and neighbouring images share no stream.
uint64_t stream_seed(uint64_t seed, uint64_t index) { return splitmix64(splitmix64(seed) + index); }

std::string image_id(int index) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%06d", index + 1);
  return buf;
}

using Polygons = std::vector<std::vector<cv::Point>>;

// A shape before placement: outline and optional hole in units of the radius, and its rotation.
struct Outline {
  std::vector<cv::Point2d> local;
  std::vector<cv::Point2d> hole;
  double angle = 0;
};

// Enough vertices that a large circle stays round, few enough that a tiny one stays cheap.
void add_ellipse(double a, double b, double r, std::vector<cv::Point2d>& out) {
  const int n = std::clamp(static_cast<int>(2 * kPi * std::max(a, b) * r / 3), 12, 72);
  for (int i = 0; i < n; ++i) {
    const double t = 2 * kPi * i / n;
    out.emplace_back(a * std::cos(t), b * std::sin(t));
  }
}

// The shapes only the classification set has (kinds 10-13).
void classification_outline(int kind, double r, Rng& rng, Outline& o) {
  switch (kind) {
    case 10:  // regular pentagon
      for (int i = 0; i < 5; ++i) o.local.emplace_back(std::cos(2 * kPi * i / 5), std::sin(2 * kPi * i / 5));
      break;
    case 11: {  // trapezoid, wide side down, nearly upright
      const double a = rng.uniform(0.35, 0.6), hh = rng.uniform(0.55, 0.75);
      o.local = {{-1, hh}, {1, hh}, {a, -hh}, {-a, -hh}};
      o.angle = rng.uniform(-0.3, 0.3);
      break;
    }
    case 12: {  // chevron (a thick V)
      const double t = rng.uniform(0.35, 0.5);
      o.local = {{-1, -0.6}, {0, 0.4 - t}, {1, -0.6}, {1, -0.6 + t}, {0, 0.4}, {-1, -0.6 + t}};
      break;
    }
    default: {  // semicircle (half disc)
      const int n = std::clamp(static_cast<int>(kPi * r / 3), 8, 36);
      for (int i = 0; i <= n; ++i) o.local.emplace_back(std::cos(kPi * i / n), 0.5 - std::sin(kPi * i / n));
      break;
    }
  }
}

// The random angle is drawn first for every kind, even those that replace it, so that each
// kind consumes the stream in a fixed order.
Outline shape_outline(int kind, double r, Rng& rng) {
  Outline o;
  o.angle = rng.uniform(0, 2 * kPi);
  switch (kind) {
    case 0: {  // square: only slightly tilted so it never looks like a diamond
      const double a = rng.uniform(0.92, 1.0), b = rng.uniform(0.92, 1.0);
      o.local = {{-a, -b}, {a, -b}, {a, b}, {-a, b}};
      o.angle = rng.uniform(-0.25, 0.25);
      break;
    }
    case 1:
      add_ellipse(1, 1, r, o.local);
      break;
    case 2:
      for (int i = 0; i < 3; ++i) {
        const double t = 2 * kPi * i / 3 + rng.uniform(-0.12, 0.12);
        const double s = rng.uniform(0.9, 1.0);
        o.local.emplace_back(s * std::cos(t), s * std::sin(t));
      }
      break;
    case 3: {  // five-pointed star
      const double inner = rng.uniform(0.38, 0.5);
      for (int i = 0; i < 10; ++i) {
        const double t = kPi * i / 5, s = i % 2 ? inner : 1.0;
        o.local.emplace_back(s * std::cos(t), s * std::sin(t));
      }
      break;
    }
    case 4: {  // thick circular ring
      add_ellipse(1, 1, r, o.local);
      const double inner = rng.uniform(0.45, 0.62);
      add_ellipse(inner, inner, r, o.hole);
      break;
    }
    case 5: {  // plus sign
      const double w = rng.uniform(0.25, 0.38);
      o.local = {{-w, -1}, {w, -1}, {w, -w}, {1, -w}, {1, w},   {w, w},
                 {w, 1},   {-w, 1}, {-w, w}, {-1, w}, {-1, -w}, {-w, -w}};
      o.angle = rng.uniform(-0.3, 0.3);
      break;
    }
    case 6:
      for (int i = 0; i < 6; ++i) o.local.emplace_back(std::cos(kPi * i / 3), std::sin(kPi * i / 3));
      break;
    case 7: {  // upright rhombus, taller than wide
      const double a = rng.uniform(0.55, 0.75);
      o.local = {{0, -1}, {a, 0}, {0, 1}, {-a, 0}};
      o.angle = rng.uniform(-0.2, 0.2);
      break;
    }
    case 8: {  // thin elongated outline
      const double b = rng.uniform(0.45, 0.7);
      const double t = std::max(1.5 / r, rng.uniform(0.1, 0.18));
      add_ellipse(1, b, r, o.local);
      if (b - t > 0.05) add_ellipse(1 - t, b - t, r, o.hole);
      break;
    }
    case 9: {  // arrow along +x
      const double sw = rng.uniform(0.18, 0.28), hw = rng.uniform(0.6, 0.8);
      const double h0 = rng.uniform(0.05, 0.3);
      o.local = {{-1, -sw}, {h0, -sw}, {h0, -hw}, {1, 0}, {h0, hw}, {h0, sw}, {-1, sw}};
      break;
    }
    default:
      classification_outline(kind, r, rng, o);
      break;
  }
  return o;
}

// Rotates by `angle`, scales by `r`, centres on `c`, in fillPoly's fixed-point units.
std::vector<cv::Point> place_outline(const std::vector<cv::Point2d>& pts, cv::Point2d c, double r, double angle) {
  const double ca = std::cos(angle), sa = std::sin(angle);
  std::vector<cv::Point> out;
  out.reserve(pts.size());
  for (const auto& p : pts) {
    const double x = c.x + r * (ca * p.x - sa * p.y), y = c.y + r * (sa * p.x + ca * p.y);
    out.emplace_back(cvRound(x * kPolyScale), cvRound(y * kPolyScale));
  }
  return out;
}

// The outlines of one object of shape `kind`, about `d` pixels across, centred on `c`.
// Every shape becomes polygons (circles included) so that one fillPoly call draws it and its
// vertex extent tells whether the image border cuts it.
Polygons shape_polygons(int kind, cv::Point2d c, double d, Rng& rng) {
  const double r = d / 2;
  const Outline o = shape_outline(kind, r, rng);
  Polygons polys{place_outline(o.local, c, r, o.angle)};
  if (!o.hole.empty()) polys.push_back(place_outline(o.hole, c, r, o.angle));
  return polys;
}

// Background: two-colour gradient, low-frequency colour blobs, then thin lines and specks that
// belong to no class so that "anything not flat" is not a shortcut for "object".
cv::Mat make_background(int width, int height, double clutter, Rng& rng) {
  const cv::Scalar c0 = rng.color(), c1 = rng.color();
  const double theta = rng.uniform(0, 2 * kPi), span = std::hypot(width, height);
  const double gx = std::cos(theta) / span, gy = std::sin(theta) / span;

  const int cells_x = 3 + rng.below(8), cells_y = 3 + rng.below(8);
  const double blob_amp = rng.uniform(10, 50) * std::min(clutter, 1.0);
  cv::Mat cells(cells_y, cells_x, CV_32FC3);
  for (int y = 0; y < cells_y; ++y)
    for (int x = 0; x < cells_x; ++x)
      for (int ch = 0; ch < 3; ++ch)
        cells.at<cv::Vec3f>(y, x)[ch] = static_cast<float>(rng.uniform(-blob_amp, blob_amp));
  cv::Mat blobs;
  cv::resize(cells, blobs, cv::Size(width, height), 0, 0, cv::INTER_CUBIC);

  cv::Mat img(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    const auto* b = blobs.ptr<cv::Vec3f>(y);
    auto* p = img.ptr<cv::Vec3b>(y);
    for (int x = 0; x < width; ++x) {
      const double t = std::clamp(0.5 + (x - width / 2.0) * gx + (y - height / 2.0) * gy, 0.0, 1.0);
      for (int ch = 0; ch < 3; ++ch) p[x][ch] = cv::saturate_cast<uchar>(c0[ch] + (c1[ch] - c0[ch]) * t + b[x][ch]);
    }
  }

  auto random_point = [&] { return cv::Point(rng.below(width), rng.below(height)); };
  // The draws stay the same for every clutter level; only the counts scale.
  const int strokes = static_cast<int>(std::lround(rng.below(9) * clutter));
  for (int i = 0; i < strokes; ++i) {  // open polylines: straight lines and random walks
    std::vector<cv::Point> pts{random_point()};
    const int segments = 1 + rng.below(4);
    for (int s = 0; s < segments; ++s) pts.push_back(random_point());
    cv::polylines(img, pts, false, rng.color(), 1 + rng.below(2), cv::LINE_AA);
  }
  const int specks = static_cast<int>(std::lround(rng.below(40) * clutter));
  for (int i = 0; i < specks; ++i) {
    const cv::Point p = random_point();
    cv::rectangle(img, p, p + cv::Point(rng.below(2), rng.below(2)), rng.color(), cv::FILLED);
  }
  return img;
}

// Paints `mask` with `base`, sometimes with a linear shading so that objects are not all flat.
void paint(cv::Mat& img, const cv::Mat& mask, cv::Rect box, cv::Scalar base, Rng& rng) {
  const bool shaded = rng.chance(0.5);
  const double theta = rng.uniform(0, 2 * kPi), amp = shaded ? rng.uniform(15, 45) : 0.0;
  const double scale = amp / std::max(1, std::max(box.width, box.height));
  const double cx = box.x + box.width / 2.0, cy = box.y + box.height / 2.0;
  for (int y = box.y; y < box.y + box.height; ++y) {
    const uchar* m = mask.ptr<uchar>(y);
    auto* p = img.ptr<cv::Vec3b>(y);
    for (int x = box.x; x < box.x + box.width; ++x) {
      if (!m[x]) continue;
      const double shade = ((x - cx) * std::cos(theta) + (y - cy) * std::sin(theta)) * scale;
      for (int ch = 0; ch < 3; ++ch) p[x][ch] = cv::saturate_cast<uchar>(base[ch] + shade);
    }
  }
}

struct Context {
  const SynthOptions& options;
  std::vector<std::string> names;
  std::vector<double> cumulative;  // class sampling CDF (long tail)
  fs::path annotations, images;
};

int sample_class(const Context& ctx, Rng& rng) {
  const double u = rng.uniform() * ctx.cumulative.back();
  const auto it = std::upper_bound(ctx.cumulative.begin(), ctx.cumulative.end(), u);
  return std::min(static_cast<int>(it - ctx.cumulative.begin()), static_cast<int>(ctx.cumulative.size()) - 1);
}

void write_xml(const ImageRecord& rec, const std::string& path) {
  pugi::xml_document doc;
  auto ann = doc.append_child("annotation");
  ann.append_child("folder").text().set("synth");
  ann.append_child("filename").text().set((rec.id + ".jpg").c_str());
  auto source = ann.append_child("source");
  source.append_child("database").text().set("yolo2 synth");
  source.append_child("annotation").text().set("yolo2 synth");
  source.append_child("image").text().set("generated");
  auto size = ann.append_child("size");
  size.append_child("width").text().set(rec.width);
  size.append_child("height").text().set(rec.height);
  size.append_child("depth").text().set(3);
  ann.append_child("segmented").text().set(0);
  for (const Object& o : rec.objects) {
    auto obj = ann.append_child("object");
    obj.append_child("name").text().set(o.name.c_str());
    obj.append_child("pose").text().set("Unspecified");
    obj.append_child("truncated").text().set(o.truncated ? 1 : 0);
    obj.append_child("difficult").text().set(o.difficult ? 1 : 0);
    auto box = obj.append_child("bndbox");  // VOC is 1-based
    box.append_child("xmin").text().set(static_cast<int>(o.x1) + 1);
    box.append_child("ymin").text().set(static_cast<int>(o.y1) + 1);
    box.append_child("xmax").text().set(static_cast<int>(o.x2) + 1);
    box.append_child("ymax").text().set(static_cast<int>(o.y2) + 1);
  }
  if (!doc.save_file(path.c_str(), "\t", pugi::format_indent | pugi::format_no_declaration))
    throw Error("synth: cannot write annotation '" + path + "'");
}

// What one image is drawn on: the picture, a scratch mask, and which object is on top where.
struct Canvas {
  int w, h;
  cv::Mat img;
  cv::Mat mask;
  cv::Mat owner;                  // 1 + index of the object on top, 0: none
  std::vector<int> drawn_pixels;  // per drawn object, its area when drawn
};

// Where an object goes. A quarter of them straddle a border so that part of the shape is cut.
cv::Point2d draw_centre(double d, int w, int h, Rng& rng) {
  cv::Point2d c(rng.uniform(d / 2, std::max(d / 2, w - d / 2)), rng.uniform(d / 2, std::max(d / 2, h - d / 2)));
  if (rng.chance(0.25)) {
    const double inside = rng.uniform(-0.25, 0.4) * d;
    switch (rng.below(4)) {
      case 0:
        c.x = inside;
        break;
      case 1:
        c.x = w - 1 - inside;
        break;
      case 2:
        c.y = inside;
        break;
      default:
        c.y = h - 1 - inside;
        break;
    }
  }
  return c;
}

// Vertex extent of an outline in pixels, border cuts included.
struct Extent {
  double lo_x = 1e9, lo_y = 1e9, hi_x = -1e9, hi_y = -1e9;
};

Extent extent_of(const std::vector<cv::Point>& outline) {
  Extent e;
  for (const auto& p : outline) {
    e.lo_x = std::min(e.lo_x, p.x / kPolyScale), e.hi_x = std::max(e.hi_x, p.x / kPolyScale);
    e.lo_y = std::min(e.lo_y, p.y / kPolyScale), e.hi_y = std::max(e.hi_y, p.y / kPolyScale);
  }
  return e;
}

// A few redraws find a colour that stands out from what the object covers; after that the
// last draw is kept, so that the number of draws stays bounded.
cv::Scalar contrasting_color(const Canvas& canvas, Rng& rng) {
  const cv::Scalar under = cv::mean(canvas.img, canvas.mask);
  cv::Scalar color = rng.color();
  for (int tries = 0; tries < 8; ++tries) {
    const double dist = std::abs(color[0] - under[0]) + std::abs(color[1] - under[1]) + std::abs(color[2] - under[2]);
    if (dist >= kMinContrast) break;
    color = rng.color();
  }
  return color;
}

Object annotation(const Context& ctx, int label, cv::Rect box, const Extent& e, int w, int h) {
  Object o;
  o.label = label;
  o.name = ctx.names[label];
  o.x1 = static_cast<float>(box.x);
  o.y1 = static_cast<float>(box.y);
  o.x2 = static_cast<float>(box.x + box.width - 1);
  o.y2 = static_cast<float>(box.y + box.height - 1);
  o.truncated = e.lo_x < -0.5 || e.lo_y < -0.5 || e.hi_x > w - 0.5 || e.hi_y > h - 0.5;
  o.difficult = std::max(box.width, box.height) < kTinySide;
  return o;
}

// Draws one object of class `label`, retrying placements that would be mostly cut or too
// small to see; returns its annotation, or nothing when every attempt failed.
std::optional<Object> draw_object(const Context& ctx, int label, double min_side, double max_side, Canvas& canvas,
                                  Rng& rng) {
  const int w = canvas.w, h = canvas.h;
  for (int attempt = 0; attempt < 20; ++attempt) {
    // Log-uniform sizes: as many tiny objects as large ones per octave, like real scenes.
    const double d = min_side * std::exp(rng.uniform() * std::log(max_side / min_side));
    const cv::Point2d c = draw_centre(d, w, h, rng);
    const Polygons polys = shape_polygons(label, c, d, rng);
    const Extent e = extent_of(polys[0]);
    // Mostly-outside shapes are unrecognisable; VOC would not annotate them either.
    const double kept_x = std::min(e.hi_x, w - 0.5) - std::max(e.lo_x, -0.5);
    const double kept_y = std::min(e.hi_y, h - 0.5) - std::max(e.lo_y, -0.5);
    if (kept_x < 0.3 * (e.hi_x - e.lo_x) || kept_y < 0.3 * (e.hi_y - e.lo_y)) continue;

    canvas.mask.setTo(0);
    cv::fillPoly(canvas.mask, polys, cv::Scalar(255), cv::LINE_8, kPolyShift);
    const int pixels = cv::countNonZero(canvas.mask);
    if (pixels < kMinVisiblePixels) continue;
    const cv::Rect box = cv::boundingRect(canvas.mask);

    const cv::Scalar color = contrasting_color(canvas, rng);
    paint(canvas.img, canvas.mask, box, color, rng);
    canvas.owner.setTo(cv::Scalar(static_cast<int>(canvas.drawn_pixels.size()) + 1), canvas.mask);
    canvas.drawn_pixels.push_back(pixels);
    return annotation(ctx, label, box, e, w, h);
  }
  return std::nullopt;
}

// Occlusion is known only once everything is drawn: count what stayed on top, drop what is
// practically invisible and mark what is mostly hidden as difficult.
std::vector<Object> visible_objects(const std::vector<Object>& objects, const Canvas& canvas) {
  std::vector<int> visible(canvas.drawn_pixels.size() + 1, 0);
  for (int y = 0; y < canvas.h; ++y) {
    const int* o = canvas.owner.ptr<int>(y);
    for (int x = 0; x < canvas.w; ++x) ++visible[o[x]];
  }
  std::vector<Object> kept;
  for (size_t i = 0; i < objects.size(); ++i) {
    const double hidden = 1.0 - static_cast<double>(visible[i + 1]) / canvas.drawn_pixels[i];
    if (hidden > kHiddenDropped) continue;
    Object o = objects[i];
    o.difficult = o.difficult || hidden > kHiddenDifficult;
    kept.push_back(o);
  }
  return kept;
}

// Sensor-like noise over everything, objects included; one draw serves 8 bytes.
void add_noise(cv::Mat& img, Rng& rng) {
  const int w = img.cols, h = img.rows;
  const int amp = 2 + rng.below(9);
  for (int y = 0; y < h; ++y) {
    uchar* p = img.ptr<uchar>(y);
    for (int x = 0; x < w * 3; x += 8) {
      uint64_t bits = rng.next();
      for (int j = x; j < std::min(x + 8, w * 3); ++j, bits >>= 8) {
        const int n = static_cast<int>(((bits & 0xFF) * (2 * amp + 1)) >> 8) - amp;
        p[j] = cv::saturate_cast<uchar>(p[j] + n);
      }
    }
  }
}

void write_jpeg(const std::string& path, const cv::Mat& img, int quality) {
  bool written = false;
  try {
    written = cv::imwrite(path, img, {cv::IMWRITE_JPEG_QUALITY, quality});
  } catch (const cv::Exception& e) {
    throw Error("synth: cannot write image '" + path + "': " + e.what());
  }
  if (!written) throw Error("synth: cannot write image '" + path + "'");
}

// Each image draws from its own stream, so images can be made in any order, on any thread.
ImageRecord make_image(const Context& ctx, int index) {
  const SynthOptions& opt = ctx.options;
  Rng rng(stream_seed(opt.seed, static_cast<uint64_t>(index)));
  ImageRecord rec;
  rec.id = image_id(index);
  const int side = std::max(24, static_cast<int>(std::lround(opt.size * rng.uniform(0.75, 1.0))));
  const bool landscape = rng.chance(0.5);
  rec.width = landscape ? opt.size : side;
  rec.height = landscape ? side : opt.size;
  const int w = rec.width, h = rec.height;

  Canvas canvas{
      w, h, make_background(w, h, opt.clutter, rng), cv::Mat(h, w, CV_8UC1), cv::Mat(h, w, CV_32SC1, cv::Scalar(0)),
      {}};
  const double min_side = opt.min_object;
  const double max_side = std::max<double>(min_side + 1, std::min(w, h) / 2.0);
  const int count = 1 + rng.below(opt.max_objects);
  for (int k = 0; k < count; ++k) {
    const int label = sample_class(ctx, rng);
    if (auto o = draw_object(ctx, label, min_side, max_side, canvas, rng)) rec.objects.push_back(*o);
  }
  rec.objects = visible_objects(rec.objects, canvas);
  if (!opt.difficult || opt.format == DatasetFormat::Darknet)
    for (Object& o : rec.objects) o.difficult = false;  // after the draws: the pixels stay the same
  add_noise(canvas.img, rng);

  rec.image_path = (ctx.images / (rec.id + ".jpg")).string();
  write_jpeg(rec.image_path, canvas.img, opt.jpeg_quality);
  if (opt.format == DatasetFormat::Voc) {
    rec.annotation = (ctx.annotations / (rec.id + ".xml")).string();
    write_xml(rec, rec.annotation);
  } else if (opt.format == DatasetFormat::Darknet) {
    rec.annotation = (ctx.annotations / (rec.id + ".txt")).string();
    synth_forms::write_darknet_labels(rec, rec.annotation);
  }
  return rec;
}

// Stripes of a second colour over an object (classification images): texture that is not the class.
void add_stripes(cv::Mat& img, const cv::Mat& mask, cv::Rect box, Rng& rng) {
  const cv::Scalar color = rng.color();
  const double theta = rng.uniform(0, kPi), period = rng.uniform(3, 9);
  const double ct = std::cos(theta), st = std::sin(theta);
  for (int y = box.y; y < box.y + box.height; ++y) {
    const uchar* m = mask.ptr<uchar>(y);
    auto* p = img.ptr<cv::Vec3b>(y);
    for (int x = box.x; x < box.x + box.width; ++x)
      if (m[x] && std::fmod(std::abs(x * ct + y * st), period) < period / 2)
        for (int ch = 0; ch < 3; ++ch) p[x][ch] = static_cast<uchar>((p[x][ch] + color[ch]) / 2);
  }
}

// Classification image `index` of class `label`: one shape filling 35-85 % of a background like
// the detection images', sometimes striped, with sensor noise. Its own seed stream (kClassifyStream),
// so no image shares draws with a detection image of the same seed.
constexpr uint64_t kClassifyStream = 0xC1A551F1ULL;

cv::Mat make_classification_image(const SynthOptions& opt, int index, int label) {
  Rng rng(stream_seed(splitmix64(opt.seed) ^ kClassifyStream, static_cast<uint64_t>(index)));
  const int side = std::max(24, static_cast<int>(std::lround(opt.size * rng.uniform(0.75, 1.0))));
  const bool landscape = rng.chance(0.5);
  const int w = landscape ? opt.size : side, h = landscape ? side : opt.size;
  cv::Mat img = make_background(w, h, opt.clutter, rng);
  cv::Mat mask(h, w, CV_8UC1, cv::Scalar(0));
  const double d = rng.uniform(0.35, 0.85) * std::min(w, h);
  const double mx = std::max(d / 2 * 0.7, w - d / 2 * 0.7), my = std::max(d / 2 * 0.7, h - d / 2 * 0.7);
  const cv::Point2d c(rng.uniform(std::min(d / 2 * 0.7, mx), mx), rng.uniform(std::min(d / 2 * 0.7, my), my));
  cv::fillPoly(mask, shape_polygons(label, c, d, rng), cv::Scalar(255), cv::LINE_8, kPolyShift);
  const cv::Rect box = cv::boundingRect(mask);
  if (box.area() > 0) {
    const cv::Scalar under = cv::mean(img, mask);
    cv::Scalar color = rng.color();
    for (int tries = 0; tries < 8; ++tries) {
      if (std::abs(color[0] - under[0]) + std::abs(color[1] - under[1]) + std::abs(color[2] - under[2]) >= kMinContrast)
        break;
      color = rng.color();
    }
    paint(img, mask, box, color, rng);
    if (rng.chance(0.35)) add_stripes(img, mask, box, rng);
  }
  add_noise(img, rng);
  return img;
}

using synth_forms::make_dir;

void write_lines(const fs::path& path, const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += line + '\n';
  synth_forms::write_text(path, text);
}

void validate(const SynthOptions& o) {
  auto fail = [](const std::string& what) { throw Error("synth: invalid option " + what); };
  if (o.out_dir.empty()) fail("out_dir: empty");
  if (o.train < 1) fail("train: " + std::to_string(o.train) + " (need >= 1)");
  if (o.test < 0) fail("test: " + std::to_string(o.test) + " (need >= 0)");
  // 8192: a 64-megapixel image, far beyond any detector's input (VOC's are 500 px); one image of
  // 100,000 px would need 30 GB.
  if (o.size < 32 || o.size > 8192) fail("size: " + std::to_string(o.size) + " (need 32..8192)");
  if (!(o.clutter >= 0 && o.clutter <= 2)) fail("clutter: " + std::to_string(o.clutter) + " (need 0..2)");
  const int most = o.classification ? kAllShapes : kDetectionShapes;
  if (o.num_classes < 6 || o.num_classes > most)
    fail("num_classes: " + std::to_string(o.num_classes) + " (need 6.." + std::to_string(most) + ")");
  if (!(o.imbalance >= 1.0)) fail("imbalance: " + std::to_string(o.imbalance) + " (need >= 1)");
  if (o.min_object < 4 || o.min_object > o.size / 2)
    fail("min_object: " + std::to_string(o.min_object) + " (need 4..size/2)");
  if (o.max_objects < 1) fail("max_objects: " + std::to_string(o.max_objects) + " (need >= 1)");
  if (o.jpeg_quality < 1 || o.jpeg_quality > 100)
    fail("jpeg_quality: " + std::to_string(o.jpeg_quality) + " (need 1..100)");
  if (o.threads < 0) fail("threads: " + std::to_string(o.threads) + " (need >= 0)");
  if (o.format == DatasetFormat::Auto) fail("format: auto (need voc, darknet or coco)");
  if (o.classification && o.format != DatasetFormat::Voc)
    fail("format: the classification set is an ImageFolder tree; --format is for detection sets");
}

// Class k is drawn with weight imbalance^(-k / (classes - 1)): a long tail from the first class
// to the last, whose ratio is `imbalance`.
std::vector<double> class_cdf(const SynthOptions& options) {
  const int classes = options.num_classes;
  std::vector<double> cumulative;
  double total = 0;
  for (int k = 0; k < classes; ++k) {
    total += std::pow(options.imbalance, -static_cast<double>(k) / (classes - 1));
    cumulative.push_back(total);
  }
  return cumulative;
}

// Runs job(0 .. n-1) on a pool of threads; the first error stops the others and is rethrown.
template <class Job>
void run_pool(int threads_option, int n, const Job& job) {
  if (n <= 0) return;
  int threads = threads_option > 0 ? threads_option : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp(threads, 1, n);
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (int i = next++; i < n && !failed; i = next++) {
      try {
        job(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

void make_images(const Context& ctx, std::vector<ImageRecord>& images) {
  run_pool(ctx.options.threads, static_cast<int>(images.size()), [&](int i) { images[i] = make_image(ctx, i); });
}

// Image indices of train, val, trainval and test (kSplits' order). A seeded shuffle rather
// than alternating ids, so train and val are both spread over ids.
std::vector<std::vector<int>> split_indices(const SynthOptions& options) {
  const int n = options.train + options.test;
  std::vector<int> order(options.train);
  for (int i = 0; i < options.train; ++i) order[i] = i;
  Rng split_rng(stream_seed(options.seed, 0xA11C0DEULL << 32));
  for (int i = options.train - 1; i > 0; --i) std::swap(order[i], order[split_rng.below(i + 1)]);
  const int train_count = (options.train + 1) / 2;
  std::vector<std::vector<int>> split_ids(4);
  split_ids[0].assign(order.begin(), order.begin() + train_count);
  split_ids[1].assign(order.begin() + train_count, order.end());
  for (int s = 0; s < 2; ++s) std::sort(split_ids[s].begin(), split_ids[s].end());
  for (int i = 0; i < options.train; ++i) split_ids[2].push_back(i);
  for (int i = options.train; i < n; ++i) split_ids[3].push_back(i);
  return split_ids;
}

// ImageSets/Main: <split>.txt and VOC's per-class <class>_<split>.txt (1 present, 0 only
// difficult, -1 absent).
// The image-set files synth writes in ImageSets/Main: <split>.txt, and <class>_<split>.txt per class.
std::string set_file(int split, const std::string& class_name = "") {
  return (class_name.empty() ? "" : class_name + "_") + kSplits[split] + ".txt";
}

std::vector<std::string> write_image_sets(const fs::path& sets, const Context& ctx,
                                          const std::vector<ImageRecord>& images,
                                          const std::vector<std::vector<int>>& split_ids) {
  std::vector<std::string> files;
  for (int s = 0; s < 4; ++s) {
    std::vector<std::string> ids;
    for (int i : split_ids[s]) ids.push_back(images[i].id);
    write_lines(sets / set_file(s), ids);
    for (int k = 0; k < static_cast<int>(ctx.names.size()); ++k) {
      std::vector<std::string> lines;
      for (int i : split_ids[s]) {
        int flag = -1;
        for (const Object& o : images[i].objects)
          if (o.label == k) flag = std::max(flag, o.difficult ? 0 : 1);
        char buf[32];
        std::snprintf(buf, sizeof buf, " %2d", flag);
        lines.push_back(images[i].id + buf);
      }
      write_lines(sets / set_file(s, ctx.names[k]), lines);
      files.push_back("ImageSets/Main/" + set_file(s, ctx.names[k]));
    }
    files.push_back("ImageSets/Main/" + set_file(s));
  }
  return files;
}

void count_objects(SynthResult& result, int classes) {
  result.objects_per_class.assign(classes, 0);
  for (const auto& rec : result.images)
    for (const Object& o : rec.objects) {
      ++result.objects_per_class[o.label];
      result.difficult += o.difficult;
      result.truncated += o.truncated;
    }
}

}  // namespace

std::vector<std::string> synth_class_names(int num_classes) {
  if (num_classes < 6 || num_classes > kAllShapes)
    throw Error("synth: num_classes must be 6.." + std::to_string(kAllShapes) + ", got " + std::to_string(num_classes));
  return {std::begin(kShapeNames), std::begin(kShapeNames) + num_classes};
}

namespace {

constexpr const char* kMarker = ".yolo2-synth";

bool six_digit_stem(const fs::path& p, const char* ext) {
  const std::string stem = p.stem().string();
  return p.extension() == ext && stem.size() == 6 && stem.find_first_not_of("0123456789") == std::string::npos;
}

constexpr const char* kMarkerHead = "written by yolo2 synth; `yolo2 synth --overwrite` may replace this dataset";
constexpr const char* kFilesLine = "files (the only ones --overwrite deletes):";

// The marker, written before the first image (a folder it marks is synth's, even if the run is cut
// short) and again at the end with the list of every file the run wrote, relative to the root.
void write_marker(const fs::path& root, const std::vector<std::string>& files, bool finished) {
  std::vector<std::string> lines{kMarkerHead, finished ? kFilesLine : "incomplete: this synth run has not finished"};
  if (finished) lines.insert(lines.end(), files.begin(), files.end());
  write_lines(root / kMarker, lines);
}

// What a finished run wrote: its images, their annotation files, `extra` (the form's own files) and
// classes.txt.
std::vector<std::string> written_files(const fs::path& root, const SynthResult& result,
                                       const std::vector<std::string>& extra) {
  std::vector<std::string> files;
  for (const auto& rec : result.images) {
    files.push_back(fs::path(rec.image_path).lexically_relative(root).generic_string());
    if (!rec.annotation.empty()) files.push_back(fs::path(rec.annotation).lexically_relative(root).generic_string());
  }
  files.insert(files.end(), extra.begin(), extra.end());
  files.emplace_back("classes.txt");
  return files;
}

// The files an earlier run listed in its marker; nothing when it did not finish (or predates lists).
std::optional<std::vector<std::string>> listed_files(const fs::path& root) {
  std::ifstream in(root / kMarker);
  std::string line;
  std::vector<std::string> files;
  bool listing = false;
  while (std::getline(in, line)) {
    if (listing && !line.empty()) files.push_back(line);
    if (line == kFilesLine) listing = true;
  }
  if (!listing) return std::nullopt;
  return files;
}

// Removes `relative` under root if it is a file there (a listed path may not leave the root).
int remove_listed(const fs::path& root, const std::string& relative) {
  const fs::path p = (root / relative).lexically_normal();
  const std::string rel = p.lexically_relative(root).generic_string();
  if (rel.empty() || rel.rfind("..", 0) == 0 || fs::path(relative).is_absolute()) return 0;
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(p, ec))) return 0;
  return fs::remove(p, ec) ? 1 : 0;
}

// Refuses a non-empty folder (without --overwrite, or not synth's: no marker); with --overwrite
// removes what the earlier run wrote: the files its marker lists, or, for a run that did not finish,
// the files of synth's own names (NNNNNN.jpg / .xml, its split files, classes.txt). A file the user
// added (an image, a split file of their own) stays.
void claim_out_dir(const SynthOptions& o) {
  const fs::path root(o.out_dir);
  if (fs::exists(root) && !fs::is_directory(root)) throw Error(o.out_dir + ": exists and is not a folder");
  if (!fs::exists(root) || fs::is_empty(root)) return;
  if (!o.overwrite)
    throw Error(o.out_dir +
                " is not empty: synth writes into a new or empty folder (--overwrite replaces a dataset "
                "synth wrote there)");
  if (!fs::exists(root / kMarker))
    throw Error(o.out_dir + " holds files synth did not write (no " + kMarker +
                " marker): yolo2 leaves it untouched; choose another --out, or delete the folder yourself");
  int removed = 0;
  if (const auto files = listed_files(root)) {
    for (const auto& f : *files) removed += remove_listed(root, f);
  } else {
    const auto remove_if = [&](const fs::path& dir, const auto& synths) {
      if (!fs::is_directory(fs::symlink_status(dir))) return;
      for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && synths(e.path())) removed += fs::remove(e.path()) ? 1 : 0;
    };
    remove_if(root / "JPEGImages", [](const fs::path& p) { return six_digit_stem(p, ".jpg"); });
    remove_if(root / "Annotations", [](const fs::path& p) { return six_digit_stem(p, ".xml"); });
    std::set<std::string> sets;
    for (int split = 0; split < 4; ++split) {
      sets.insert(set_file(split));
      for (const char* name : kShapeNames) sets.insert(set_file(split, name));
    }
    remove_if(root / "ImageSets" / "Main", [&](const fs::path& p) { return sets.count(p.filename().string()) > 0; });
    for (const char* split : {"train", "val"})
      for (const char* name : kShapeNames)
        remove_if(root / split / name, [](const fs::path& p) { return six_digit_stem(p, ".jpg"); });
    removed += remove_listed(root, "classes.txt");
  }
  // The folders of every layout (the classification set's class folders, VOC's, darknet's and
  // COCO's), when synth's removal left them empty: an empty Annotations/ would still read as VOC.
  std::vector<fs::path> folders;
  for (const char* split : {"train", "val"})
    for (const char* name : kShapeNames) folders.push_back(root / split / name);
  for (const char* dir :
       {"train", "val", "ImageSets/Main", "ImageSets", "Annotations", "JPEGImages", "images", "labels", "annotations"})
    folders.push_back(root / dir);
  for (const fs::path& dir : folders) {
    std::error_code ec;
    if (fs::is_directory(fs::symlink_status(dir)) && fs::is_empty(dir, ec)) fs::remove(dir, ec);
  }
  spdlog::info("synth --overwrite: removed {} file(s) the earlier synth run wrote in {}", removed, o.out_dir);
}

}  // namespace

namespace {

// A file this run would write that is there and is not the earlier synth run's (not in its marker's
// list; without a list, not of the names synth's fallback removal knows) is a user's, e.g. a data.yaml
// added beside an earlier VOC form: refused before anything is deleted, never overwritten.
void refuse_foreign_targets(const SynthOptions& o) {
  if (o.classification || !o.overwrite) return;  // class folders are synth's alone; a non-empty --out is refused anyway
  const fs::path root(o.out_dir);
  const std::optional<std::vector<std::string>> listed = listed_files(root);
  const std::set<std::string> own =
      listed ? std::set<std::string>(listed->begin(), listed->end()) : std::set<std::string>{};
  const auto synths = [&](const std::string& name) {
    if (listed) return own.count(name) > 0;
    const fs::path p(name);
    const std::string dir = p.parent_path().generic_string();
    return name == "classes.txt" || dir == "ImageSets/Main" || (dir == "JPEGImages" && six_digit_stem(p, ".jpg")) ||
           (dir == "Annotations" && six_digit_stem(p, ".xml"));
  };
  std::vector<std::string> names{"classes.txt"};
  const bool voc = o.format == DatasetFormat::Voc, darknet = o.format == DatasetFormat::Darknet;
  for (int i = 0; i < o.train + o.test; ++i) {
    names.push_back(std::string(voc ? "JPEGImages/" : "images/") + image_id(i) + ".jpg");
    if (voc) names.push_back("Annotations/" + image_id(i) + ".xml");
    if (darknet) names.push_back("labels/" + image_id(i) + ".txt");
  }
  for (int split = 0; split < 4; ++split) {
    if (voc) names.push_back("ImageSets/Main/" + set_file(split));
    if (darknet) names.push_back(set_file(split));
    if (o.format == DatasetFormat::Coco)
      names.push_back(std::string("annotations/instances_") + kSplits[split] + ".json");
  }
  if (darknet) names.insert(names.end(), {"obj.names", "obj.data", "data.yaml"});
  for (const auto& name : names) {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(root / name, ec)) && !synths(name))
      throw Error((root / name).string() +
                  ": exists and synth did not write it (not in its marker): yolo2 leaves it untouched; move it or "
                  "choose another --out");
  }
}

// --classification: ROOT/train/<class>/NNNNNN.jpg (options.train images) and ROOT/val/<class>/
// (options.test images), classes in turn, so each class has the same number of images (+-1).
SynthResult write_classification(const SynthOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const fs::path root(options.out_dir);
  SynthResult result;
  result.class_names = synth_class_names(options.num_classes);
  for (const char* split : {"train", "val"})
    if (std::string(split) == "train" || options.test > 0)
      for (const auto& name : result.class_names) make_dir(root / split / name);
  write_marker(root, {}, false);
  const int n = options.train + options.test;
  result.images.resize(static_cast<std::size_t>(n));
  run_pool(options.threads, n, [&](int i) {
    const int label = i % options.num_classes;
    ImageRecord& rec = result.images[static_cast<std::size_t>(i)];
    rec.id = image_id(i);
    rec.image_path = (root / (i < options.train ? "train" : "val") /
                      result.class_names[static_cast<std::size_t>(label)] / (rec.id + ".jpg"))
                         .string();
    const cv::Mat img = make_classification_image(options, i, label);
    rec.width = img.cols, rec.height = img.rows;
    Object o;
    o.label = label;
    o.name = result.class_names[static_cast<std::size_t>(label)];
    rec.objects.push_back(o);
    write_jpeg(rec.image_path, img, options.jpeg_quality);
  });
  write_lines(root / "classes.txt", result.class_names);
  write_marker(root, written_files(root, result, {}), true);
  count_objects(result, options.num_classes);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace

SynthResult write_synth(const SynthOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  validate(options);
  refuse_foreign_targets(options);  // before claim_out_dir deletes anything
  claim_out_dir(options);
  if (options.classification) return write_classification(options);
  const fs::path root(options.out_dir);
  const bool voc = options.format == DatasetFormat::Voc;
  Context ctx{options, synth_class_names(options.num_classes), class_cdf(options),
              root / (voc ? "Annotations" : "labels"), root / (voc ? "JPEGImages" : "images")};
  const fs::path sets = root / "ImageSets" / "Main";
  make_dir(ctx.images);
  if (options.format != DatasetFormat::Coco) make_dir(ctx.annotations);
  if (voc) make_dir(sets);
  write_marker(root, {}, false);

  SynthResult result;
  result.images.resize(options.train + options.test);
  make_images(ctx, result.images);
  const std::vector<std::vector<int>> split_ids = split_indices(options);
  const synth_forms::Splits splits{{std::begin(kSplits), std::end(kSplits)}, split_ids};
  const std::vector<std::string> extra = voc ? write_image_sets(sets, ctx, result.images, split_ids)
                                         : options.format == DatasetFormat::Darknet
                                             ? synth_forms::write_darknet_files(root, ctx.names, result.images, splits)
                                             : synth_forms::write_coco_files(root, ctx.names, result.images, splits);
  write_lines(root / "classes.txt", ctx.names);

  result.class_names = ctx.names;
  write_marker(root, written_files(root, result, extra), true);
  count_objects(result, options.num_classes);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace yolo2::data
