#include "yolo2/data/augment.hpp"

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <utility>

namespace yolo2::data {

double rand_scale(util::Rng& rng, double s) {
  const double scale = rng.uniform(1.0, s);
  return rng.uniform_int(0, 1) ? scale : 1.0 / scale;
}

AugmentDraw draw_augment(int ow, int oh, int out, const AugmentOptions& cfg, util::Rng& rng) {
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

namespace {

// OpenCV's 8-bit RGB2HSV_b tables (hsv_shift 12, H range 180): sdiv[i] = round(255 * 4096 / i),
// hdiv[i] = round(180 * 4096 / (6 i)), 0 at 0; rounded as saturate_cast<int>(double) (to nearest, ties to even).
// Made once per device and kept: a copy from pageable host memory would make every batch wait for
// the GPU's queue.
at::Tensor opencv_hsv_table(bool hue, const c10::Device& device) {
  static std::mutex mutex;
  static std::map<std::pair<std::string, bool>, at::Tensor> tables;
  const std::lock_guard<std::mutex> lock(mutex);
  at::Tensor& t = tables[{device.str(), hue}];
  if (!t.defined()) {
    std::vector<int> v(256, 0);
    for (int i = 1; i < 256; ++i)
      v[static_cast<std::size_t>(i)] =
          static_cast<int>(std::nearbyint(hue ? (180 << 12) / (6.0 * i) : (255 << 12) / (1.0 * i)));
    t = at::tensor(v, at::kInt).to(device);
  }
  return t;
}

// AlexeyAB's image_data_augmentation colour step on a batch (see distort_hsv_batch).
at::Tensor distort_hsv_batch_alexeyab(const at::Tensor& rgb, const at::Tensor& draws) {
  // cvtColor(BGR2HSV), 8 bits: integer arithmetic with the division tables.
  const at::Tensor x = rgb.to(at::kInt);
  const at::Tensor r = x.select(3, 0), g = x.select(3, 1), b = x.select(3, 2);
  const at::Tensor v = at::maximum(b, at::maximum(g, r)), diff = v - at::minimum(b, at::minimum(g, r));
  const auto descale = [](const at::Tensor& t) {
    return at::div(t + (1 << 11), 1 << 12, "floor");
  };  // (t + 2048) >> 12
  const at::Tensor s = descale(diff * opencv_hsv_table(false, rgb.device()).index({v.to(at::kLong)}));
  at::Tensor h = at::where(v == r, g - b, at::where(v == g, b - r + 2 * diff, r - g + 4 * diff));
  h = descale(h * opencv_hsv_table(true, rgb.device()).index({diff.to(at::kLong)}));
  h = at::where(h < 0, h + 180, h);
  // c[1] *= dsat, c[2] *= dexp (convertTo: float product, rounded to nearest even, saturated);
  // c[0] += 179 * dhue (the scalar rounded to an integer first, then added and saturated).
  const at::Tensor d = draws.to(rgb.device(), at::kDouble).view({-1, 1, 1, 3});
  const at::Tensor dsat = d.select(3, 1).to(at::kFloat), dexp = d.select(3, 2).to(at::kFloat);
  const at::Tensor shift = at::round(d.select(3, 0) * 179).to(at::kInt);
  const at::Tensor h8 = (h + shift).clamp(0, 255).to(at::kFloat);
  const at::Tensor s8 = at::round(s.to(at::kFloat) * dsat).clamp(0, 255);
  const at::Tensor v8 = at::round(v.to(at::kFloat) * dexp).clamp(0, 255);
  // cvtColor(HSV2BGR), 8 bits, as its vector loop: float, sector by truncation, result truncated.
  const double inv255 = static_cast<double>(1.0f / 255.0f), hscale = static_cast<double>(6.0f / 180.0f),
               sixth = static_cast<double>(1.0f / 6.0f);
  const at::Tensor sf = s8 * inv255, vf = v8 * inv255, hh = h8 * hscale;
  const at::Tensor pre = at::trunc(hh), f = hh - pre;
  const at::Tensor tab0 = vf, tab1 = vf * (1 - sf), tab2 = vf * (1 - sf * f), tab3 = vf * (1 - sf * (1 - f));
  const at::Tensor sector = pre - at::trunc(pre * sixth) * 6;
  const auto is = [&](double k) { return sector == k; };
  const at::Tensor bo = at::where(sector < 2, tab1, at::where(is(2), tab3, at::where(sector <= 4, tab0, tab2)));
  const at::Tensor go = at::where(sector < 1, tab3, at::where(sector <= 2, tab0, at::where(is(3), tab2, tab1)));
  const at::Tensor ro =
      at::where(sector < 1, tab0, at::where(is(1), tab2, at::where(sector <= 3, tab1, at::where(is(4), tab3, tab0))));
  const auto to_byte = [](const at::Tensor& c) { return at::trunc(c * 255).clamp(0, 255).to(at::kByte); };
  // The identity draw leaves the image as it is (distort_hsv returns early: the 8-bit round trip is lossy).
  const at::Tensor identity = ((d.select(3, 0) == 0) & (d.select(3, 1) == 1) & (d.select(3, 2) == 1)).unsqueeze(3);
  return at::where(identity, rgb, at::stack({to_byte(ro), to_byte(go), to_byte(bo)}, 3));
}

}  // namespace

at::Tensor distort_hsv_batch(const at::Tensor& rgb, const at::Tensor& draws, HsvMode mode) {
  TORCH_CHECK(rgb.dim() == 4 && rgb.size(3) == 3 && rgb.scalar_type() == at::kByte,
              "distort_hsv_batch: images must be [B, H, W, 3] uint8");
  TORCH_CHECK(draws.dim() == 2 && draws.size(0) == rgb.size(0) && draws.size(1) == 3,
              "distort_hsv_batch: draws must be [B, 3]");
  if (mode == HsvMode::AlexeyAB) return distort_hsv_batch_alexeyab(rgb, draws);
  // darknet_distort_pixel, element for element (float throughout, as the host loop).
  const at::Tensor d = draws.to(rgb.device(), at::kFloat).view({-1, 1, 1, 3});
  const at::Tensor dhue = d.select(3, 0), dsat = d.select(3, 1), dexp = d.select(3, 2);
  // Divisors as tensors on the batch's device: CUDA turns a division by a host scalar into a
  // multiplication by its reciprocal, which can differ from the host's quotient in the last bit.
  const auto fopt = rgb.options().dtype(at::kFloat);
  const at::Tensor k255 = at::scalar_tensor(255.0, fopt), k6 = at::scalar_tensor(6.0, fopt);
  const at::Tensor x = rgb.to(at::kFloat) / k255;
  const at::Tensor r = x.select(3, 0), g = x.select(3, 1), b = x.select(3, 2);
  const at::Tensor mx = at::maximum(r, at::maximum(g, b)), mn = at::minimum(r, at::minimum(g, b));
  const at::Tensor delta = mx - mn;
  const at::Tensor zero = at::zeros_like(mx);
  at::Tensor h = at::where(r == mx, (g - b) / delta, at::where(g == mx, (b - r) / delta + 2, (r - g) / delta + 4));
  h = at::where(h < 0, h + 6, h) / k6;
  h = at::where((mx != 0) & (delta != 0), h, zero);  // the host leaves h = 0 there (no division)
  at::Tensor s = at::where(mx != 0, delta / mx, zero) * dsat;
  const at::Tensor v = mx * dexp;
  h = h + dhue;
  h = at::where(h > 1, h - 1, h);
  h = at::where(h < 0, h + 1, h);
  const at::Tensor hh = h * 6;
  const at::Tensor index = hh.floor();
  const at::Tensor f = hh - index;
  const at::Tensor p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  // The six sectors of hsv_to_rgb (index 5 and anything above: the last case, as the host's else).
  const auto pick = [&](const at::Tensor& c0, const at::Tensor& c1, const at::Tensor& c2, const at::Tensor& c3,
                        const at::Tensor& c4, const at::Tensor& c5) {
    return at::where(
        index == 0, c0,
        at::where(index == 1, c1, at::where(index == 2, c2, at::where(index == 3, c3, at::where(index == 4, c4, c5)))));
  };
  const at::Tensor gray = s == 0;
  const at::Tensor ro = at::where(gray, v, pick(v, q, p, p, t, v));
  const at::Tensor go = at::where(gray, v, pick(t, v, v, q, p, p));
  const at::Tensor bo = at::where(gray, v, pick(p, p, t, v, v, q));
  // constrain_image's clamp, then distort_hsv's rounding back to 8 bits: (uchar)(c * 255 + 0.5).
  const auto to_byte = [](const at::Tensor& c) { return (c.clamp(0, 1) * 255 + 0.5).floor().to(at::kByte); };
  return at::stack({to_byte(ro), to_byte(go), to_byte(bo)}, 3);
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

Augmented augment_train(const cv::Mat& image, const std::vector<LabeledBox>& boxes, int out, const AugmentOptions& cfg,
                        util::Rng& rng, bool colour) {
  Augmented a;
  a.draw = draw_augment(image.cols, image.rows, out, cfg, rng);
  a.image = warp_image(image, a.draw.affine, out, cfg.jitter_mode == JitterMode::Crop);
  if (colour) distort_hsv(a.image, a.draw.dhue, a.draw.dsat, a.draw.dexp, cfg.hsv);
  a.boxes = transform_boxes(boxes, a.draw.affine, out, cfg.min_box_size, cfg.box_holes);
  return a;
}

}  // namespace yolo2::data
