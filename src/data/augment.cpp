#include "yolo2/data/augment.hpp"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

namespace yolo2::data {

double rand_scale(util::Rng& rng, double s) {
  const double scale = rng.uniform(1.0, s);
  return rng.uniform_int(0, 1) ? scale : 1.0 / scale;
}

AugmentDraw draw_augment(int ow, int oh, int out, const AugmentConfig& cfg, util::Rng& rng) {
  AugmentDraw d;
  const double size = out;
  if (cfg.jitter_mode == JitterMode::Crop) {
    // darknet's release / AlexeyAB load_data_detection: each side moves by an integer in
    // [-jitter*side, jitter*side]; the crop window is then resized to the input (aspect not kept).
    const int dw = static_cast<int>(ow * cfg.jitter), dh = static_cast<int>(oh * cfg.jitter);
    const int pleft = static_cast<int>(rng.uniform_int(-dw, dw));
    const int pright = static_cast<int>(rng.uniform_int(-dw, dw));
    const int ptop = static_cast<int>(rng.uniform_int(-dh, dh));
    const int pbot = static_cast<int>(rng.uniform_int(-dh, dh));
    const double swidth = std::max(1, ow - pleft - pright);
    const double sheight = std::max(1, oh - ptop - pbot);
    d.affine.ax = size / swidth;
    d.affine.bx = -pleft * d.affine.ax;
    d.affine.ay = size / sheight;
    d.affine.by = -ptop * d.affine.ay;
  } else {
    // PJ darknet 2017-18 load_data_detection (letterbox): random aspect, random scale (U(0.25, 2)
    // from March 2017 to August 2018, 1 since), random placement on a gray canvas; the image may
    // partly leave the canvas (scale > 1: the placement range is negative, as darknet's
    // rand_uniform swaps reversed bounds).
    const double dw = ow * cfg.jitter, dh = oh * cfg.jitter;
    const double new_ar = (ow + rng.uniform(-dw, dw)) / (oh + rng.uniform(-dh, dh));
    const double scale = rng.uniform(cfg.letterbox_scale.at(0), cfg.letterbox_scale.at(1));
    double nw, nh;
    if (new_ar < 1) {
      nh = scale * size;
      nw = nh * new_ar;
    } else {
      nw = scale * size;
      nh = nw / new_ar;
    }
    const double dx = rng.uniform(0, size - nw), dy = rng.uniform(0, size - nh);
    d.affine = Affine{nw / ow, dx, nh / oh, dy};
  }
  if (cfg.flip && rng.uniform_int(0, 1)) {
    d.flipped = true;
    d.affine.ax = -d.affine.ax;
    d.affine.bx = size - d.affine.bx;
  }
  d.dhue = rng.uniform(-cfg.hue, cfg.hue);
  d.dsat = rand_scale(rng, cfg.saturation);
  d.dexp = rand_scale(rng, cfg.exposure);
  return d;
}

Affine eval_affine(int ow, int oh, int out, EvalTransform transform) {
  if (transform == EvalTransform::Resize)
    return Affine{static_cast<double>(out) / ow, 0, static_cast<double>(out) / oh, 0};
  // darknet letterbox_image: integer new size and integer centring offsets.
  int new_w, new_h;
  if (static_cast<float>(out) / static_cast<float>(ow) < static_cast<float>(out) / static_cast<float>(oh)) {
    new_w = out;
    new_h = (oh * out) / ow;
  } else {
    new_h = out;
    new_w = (ow * out) / oh;
  }
  return Affine{static_cast<double>(new_w) / ow, static_cast<double>((out - new_w) / 2),
                static_cast<double>(new_h) / oh, static_cast<double>((out - new_h) / 2)};
}

cv::Mat warp_image(const cv::Mat& image, const Affine& a, int out, bool replicate_border) {
  // The affine map is on continuous coordinates (pixel i covers [i, i+1)); OpenCV maps pixel
  // centres, hence the half-pixel terms.
  const cv::Matx23d m(a.ax, 0, a.bx + 0.5 * a.ax - 0.5, 0, a.ay, a.by + 0.5 * a.ay - 0.5);
  cv::Mat dst;
  cv::warpAffine(image, dst, m, cv::Size(out, out), cv::INTER_LINEAR,
                 replicate_border ? cv::BORDER_REPLICATE : cv::BORDER_CONSTANT, cv::Scalar(127, 127, 127));
  return dst;
}

namespace {

// PJ darknet src/image.c distort_image on one pixel (r, g, b in [0, 1]), in float as darknet:
// rgb_to_hsv, S *= dsat and V *= dexp without clamping, H += dhue wrapped into [0, 1],
// hsv_to_rgb (with S > 1 or V > 1 the channels leave [0, 1]), then constrain_image's clamp.
inline void darknet_distort_pixel(float& r, float& g, float& b, float dhue, float dsat, float dexp) {
  const float mx = std::max(r, std::max(g, b)), mn = std::min(r, std::min(g, b)), delta = mx - mn;
  float h = 0, s = 0, v = mx;
  if (mx != 0) {
    s = delta / mx;
    // darknet divides by delta even when it is 0 (h = NaN); such pixels have s = 0 and come back
    // as gray whatever h is, so h = 0 here gives the same pixel.
    if (delta != 0) {
      if (r == mx)
        h = (g - b) / delta;
      else if (g == mx)
        h = 2 + (b - r) / delta;
      else
        h = 4 + (r - g) / delta;
      if (h < 0) h += 6;
      h = h / 6.f;
    }
  }
  s *= dsat;
  v *= dexp;
  h += dhue;
  if (h > 1) h -= 1;
  if (h < 0) h += 1;
  if (s == 0) {
    r = g = b = v;
  } else {
    const float hh = 6 * h;
    const int index = static_cast<int>(std::floor(hh));
    const float f = hh - static_cast<float>(index), p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    if (index == 0)
      r = v, g = t, b = p;
    else if (index == 1)
      r = q, g = v, b = p;
    else if (index == 2)
      r = p, g = v, b = t;
    else if (index == 3)
      r = p, g = q, b = v;
    else if (index == 4)
      r = t, g = p, b = v;
    else
      r = v, g = p, b = q;
  }
  r = std::clamp(r, 0.f, 1.f);
  g = std::clamp(g, 0.f, 1.f);
  b = std::clamp(b, 0.f, 1.f);
}

}  // namespace

void distort_hsv(cv::Mat& bgr, double dhue, double dsat, double dexp, HsvMode mode) {
  if (dhue == 0 && dsat == 1 && dexp == 1) return;
  if (mode == HsvMode::AlexeyAB) {
    // AlexeyAB src/image_opencv.cpp (image_data_augmentation) on the 8-bit image: OpenCV's 8-bit
    // HSV (H in 0..179), each channel scaled or shifted with saturation to 0..255.
    cv::Mat hsv;
    cv::cvtColor(bgr, hsv, cv::COLOR_BGR2HSV);
    std::vector<cv::Mat> c;
    cv::split(hsv, c);
    c[1] *= dsat;
    c[2] *= dexp;
    c[0] += 179 * dhue;
    cv::merge(c, hsv);
    cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
    return;
  }
  const float h = static_cast<float>(dhue), s = static_cast<float>(dsat), v = static_cast<float>(dexp);
  for (int y = 0; y < bgr.rows; ++y) {
    auto* px = bgr.ptr<cv::Vec3b>(y);
    for (int x = 0; x < bgr.cols; ++x) {
      // darknet's load_image: byte / 255 (a division, not a multiply by 1/255: they differ in
      // the last bit for half the bytes).
      float b = px[x][0] / 255.f, g = px[x][1] / 255.f, r = px[x][2] / 255.f;
      darknet_distort_pixel(r, g, b, h, s, v);
      // Back to 8 bits, rounded: within half a level of darknet's float image.
      px[x] = cv::Vec3b(static_cast<uchar>(b * 255.f + 0.5f), static_cast<uchar>(g * 255.f + 0.5f),
                        static_cast<uchar>(r * 255.f + 0.5f));
    }
  }
}

std::vector<LabeledBox> transform_boxes(const std::vector<LabeledBox>& boxes, const Affine& a, int out, double min_size,
                                        bool stop_at_dropped) {
  std::vector<LabeledBox> result;
  result.reserve(boxes.size());
  const double size = out, min_side = min_size * out;
  for (const auto& b : boxes) {
    double x1 = a.ax * b.x1 + a.bx, x2 = a.ax * b.x2 + a.bx;
    double y1 = a.ay * b.y1 + a.by, y2 = a.ay * b.y2 + a.by;
    if (x1 > x2) std::swap(x1, x2);
    if (y1 > y2) std::swap(y1, y2);
    x1 = std::clamp(x1, 0.0, size);
    x2 = std::clamp(x2, 0.0, size);
    y1 = std::clamp(y1, 0.0, size);
    y2 = std::clamp(y2, 0.0, size);
    if (x2 - x1 < min_side || y2 - y1 < min_side || x2 - x1 <= 0 || y2 - y1 <= 0) {
      if (stop_at_dropped) break;
      continue;
    }
    result.push_back(
        {static_cast<float>(x1), static_cast<float>(y1), static_cast<float>(x2), static_cast<float>(y2), b.label});
  }
  return result;
}

Augmented augment_train(const cv::Mat& image, const std::vector<LabeledBox>& boxes, int out, const AugmentConfig& cfg,
                        util::Rng& rng) {
  Augmented a;
  a.draw = draw_augment(image.cols, image.rows, out, cfg, rng);
  a.image = warp_image(image, a.draw.affine, out, cfg.jitter_mode == JitterMode::Crop);
  distort_hsv(a.image, a.draw.dhue, a.draw.dsat, a.draw.dexp, cfg.hsv);
  a.boxes = transform_boxes(boxes, a.draw.affine, out, cfg.min_box_size, cfg.box_holes);
  return a;
}

}  // namespace yolo2::data
