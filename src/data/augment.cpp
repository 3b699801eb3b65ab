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
    // PJ darknet 2017-18 (scale fixed to 1 as at HEAD): random aspect, random placement on a
    // gray canvas; the image may partly leave the canvas.
    const double dw = ow * cfg.jitter, dh = oh * cfg.jitter;
    const double new_ar = (ow + rng.uniform(-dw, dw)) / (oh + rng.uniform(-dh, dh));
    double nw, nh;
    if (new_ar < 1) {
      nh = size;
      nw = nh * new_ar;
    } else {
      nw = size;
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
  if (static_cast<float>(out) / ow < static_cast<float>(out) / oh) {
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
                 replicate_border ? cv::BORDER_REPLICATE : cv::BORDER_CONSTANT,
                 cv::Scalar(127, 127, 127));
  return dst;
}

void distort_hsv(cv::Mat& bgr, double dhue, double dsat, double dexp) {
  if (dhue == 0 && dsat == 1 && dexp == 1) return;
  // HSV_FULL puts hue on 0..255, so a hue shift of dhue (on [0, 1]) is dhue * 256 levels.
  cv::Mat hsv;
  cv::cvtColor(bgr, hsv, cv::COLOR_BGR2HSV_FULL);
  cv::Mat lut(1, 256, CV_8UC3);
  const double shift = dhue * 256.0;
  for (int i = 0; i < 256; ++i) {
    double h = std::fmod(i + shift, 256.0);
    if (h < 0) h += 256.0;
    lut.at<cv::Vec3b>(i) = cv::Vec3b(static_cast<uchar>(static_cast<int>(std::lround(h)) & 255),
                                     cv::saturate_cast<uchar>(i * dsat),
                                     cv::saturate_cast<uchar>(i * dexp));
  }
  cv::LUT(hsv, lut, hsv);
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR_FULL);
}

std::vector<LabeledBox> transform_boxes(const std::vector<LabeledBox>& boxes, const Affine& a,
                                        int out, double min_size) {
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
    if (x2 - x1 < min_side || y2 - y1 < min_side || x2 - x1 <= 0 || y2 - y1 <= 0) continue;
    result.push_back({static_cast<float>(x1), static_cast<float>(y1), static_cast<float>(x2),
                      static_cast<float>(y2), b.label});
  }
  return result;
}

Augmented augment_train(const cv::Mat& image, const std::vector<LabeledBox>& boxes, int out,
                        const AugmentConfig& cfg, util::Rng& rng) {
  Augmented a;
  a.draw = draw_augment(image.cols, image.rows, out, cfg, rng);
  a.image = warp_image(image, a.draw.affine, out, cfg.jitter_mode == JitterMode::Crop);
  distort_hsv(a.image, a.draw.dhue, a.draw.dsat, a.draw.dexp);
  a.boxes = transform_boxes(boxes, a.draw.affine, out, cfg.min_box_size);
  return a;
}

}  // namespace yolo2::data
