// Tests of the darknet-style augmentation: the drawn parameters stay in darknet's ranges, the
// eval letterbox follows letterbox_image, and (the main property) after a random training
// augmentation every kept box still sits on its own object's pixels.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "yolo2/data/augment.hpp"
#include "yolo2/util/rng.hpp"

namespace {

using yolo2::data::Affine;
using yolo2::data::Augmented;
using yolo2::data::AugmentOptions;
using yolo2::data::EvalTransform;
using yolo2::data::HsvMode;
using yolo2::data::JitterMode;
using yolo2::data::LabeledBox;
using yolo2::util::Rng;

// ---- a scene with known objects --------------------------------------------------------

// One filled rectangle; x1..x2, y1..y2 are the first and last covered column and row, which is
// the program's box convention (augment.hpp).
struct SceneObject {
  int x1, y1, x2, y2;
  cv::Scalar bgr;
};

// 300 x 200, plain background, four saturated rectangles. None touches the image border, so the
// border replication of the crop jitter never smears an object. Object 0 sits near the top-left
// corner and object 2 near the bottom-right one so that jitter often cuts or removes them.
struct Scene {
  static constexpr int kWidth = 300, kHeight = 200;
  std::vector<SceneObject> objects{
      {6, 8, 45, 57, cv::Scalar(0, 0, 255)},        // red
      {120, 60, 189, 139, cv::Scalar(0, 255, 0)},   // green
      {250, 150, 292, 193, cv::Scalar(255, 0, 0)},  // blue
      {205, 20, 234, 59, cv::Scalar(0, 255, 255)},  // yellow
  };
  cv::Mat image;
  std::vector<cv::Mat> masks;  // one 8-bit mask per object: 255 on its pixels
  std::vector<LabeledBox> boxes;

  Scene() {
    image = cv::Mat(kHeight, kWidth, CV_8UC3, cv::Scalar(128, 128, 128));
    for (std::size_t i = 0; i < objects.size(); ++i) {
      const SceneObject& o = objects[i];
      const cv::Rect r(o.x1, o.y1, o.x2 - o.x1 + 1, o.y2 - o.y1 + 1);
      image(r).setTo(o.bgr);
      cv::Mat m(kHeight, kWidth, CV_8UC1, cv::Scalar(0));
      m(r).setTo(255);
      masks.push_back(m);
      boxes.push_back({static_cast<float>(o.x1), static_cast<float>(o.y1), static_cast<float>(o.x2),
                       static_cast<float>(o.y2), static_cast<int>(i)});
    }
  }
};

struct Rect {
  double x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  double w() const { return x2 - x1; }
  double h() const { return y2 - y1; }
};

double iou(const Rect& a, const Rect& b) {
  const double iw = std::max(0.0, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  const double ih = std::max(0.0, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  const double inter = iw * ih;
  const double uni = a.w() * a.h() + b.w() * b.h() - inter;
  return uni > 0 ? inter / uni : 0.0;
}

// Continuous extent of the pixels above 127 ([first, last + 1) in each direction); empty (all
// zero) when none.
Rect mask_extent(const cv::Mat& mask) {
  cv::Mat on = mask > 127;
  std::vector<cv::Point> pts;
  cv::findNonZero(on, pts);
  if (pts.empty()) return {};
  const cv::Rect r = cv::boundingRect(pts);
  return {double(r.x), double(r.y), double(r.x + r.width), double(r.y + r.height)};
}

const LabeledBox* find_label(const std::vector<LabeledBox>& boxes, int label) {
  for (const auto& b : boxes)
    if (b.label == label) return &b;
  return nullptr;
}

struct SweepResult {
  int draws = 0, flipped = 0, checked = 0, dropped = 0, kept_tiny = 0;
};

// For many seeds: augment the scene, warp each object's mask with the same affine (no HSV),
// and compare the mask's visible extent with the transformed box of that label.
// small_object_slack: objects of 8-10 px (scaled down by letterbox_scale) get a size-aware IoU
// floor, since half a pixel of resampling on each side costs IoU 1.5 / side.
SweepResult sweep(const AugmentOptions& cfg, int out, int seeds, bool small_object_slack = false) {
  const Scene scene;
  SweepResult res;
  const bool replicate = cfg.jitter_mode == JitterMode::Crop;
  for (int seed = 0; seed < seeds; ++seed) {
    Rng rng(static_cast<uint64_t>(seed) * 7919 + 3);
    const Augmented a = yolo2::data::augment_train(scene.image, scene.boxes, out, cfg, rng);
    ++res.draws;
    res.flipped += a.draw.flipped;
    EXPECT_EQ(a.image.rows, out);
    EXPECT_EQ(a.image.cols, out);
    EXPECT_EQ(a.image.type(), CV_8UC3);
    EXPECT_EQ(a.draw.flipped, a.draw.affine.ax < 0) << "seed " << seed;
    // Kept boxes keep the input order (labels here are increasing).
    for (std::size_t i = 1; i < a.boxes.size(); ++i)
      EXPECT_LT(a.boxes[i - 1].label, a.boxes[i].label) << "seed " << seed;

    const double sx = std::abs(a.draw.affine.ax), sy = std::abs(a.draw.affine.ay);
    for (std::size_t k = 0; k < scene.objects.size(); ++k) {
      const int label = static_cast<int>(k);
      const cv::Mat warped = yolo2::data::warp_image(scene.masks[k], a.draw.affine, out, replicate);
      const Rect vis = mask_extent(warped);
      const LabeledBox* box = find_label(a.boxes, label);
      const std::string where = "seed " + std::to_string(seed) + " object " + std::to_string(k);
      if (!box) {
        // Dropped: only when what is left of the object is a sliver (the threshold is
        // min_box_size * out, a fraction of a pixel; the mask adds up to a pixel of
        // resampling and one source pixel of the box convention).
        ++res.dropped;
        EXPECT_TRUE(vis.w() <= 3 || vis.h() <= 3)
            << where << ": dropped although " << vis.w() << "x" << vis.h() << " px are visible";
        continue;
      }
      EXPECT_GT(box->x2, box->x1) << where;
      EXPECT_GT(box->y2, box->y1) << where;
      EXPECT_GE(box->x1, 0.0f) << where;
      EXPECT_GE(box->y1, 0.0f) << where;
      EXPECT_LE(box->x2, out) << where;
      EXPECT_LE(box->y2, out) << where;
      if (vis.w() < 8 || vis.h() < 8) {
        ++res.kept_tiny;
        // A box kept for a barely visible object must itself be small.
        EXPECT_TRUE(box->x2 - box->x1 < 10 || box->y2 - box->y1 < 10) << where;
        continue;
      }
      // The box convention (width = x2 - x1, darknet's voc_label.py) leaves the box one source
      // pixel short of the object's last column and row, i.e. short by |ax| (|ay|) output pixels
      // on its far side: the right side, or the left one when flipped. Extend it by that much
      // (within the canvas) to get the object's extent, then compare.
      Rect expect{box->x1, box->y1, box->x2, box->y2 + sy};
      if (a.draw.flipped)
        expect.x1 -= sx;
      else
        expect.x2 += sx;
      expect.x1 = std::max(0.0, expect.x1);
      expect.x2 = std::min<double>(out, expect.x2);
      expect.y2 = std::min<double>(out, expect.y2);
      const double overlap = iou(expect, vis);
      const double min_overlap = small_object_slack ? std::min(0.85, 1 - 1.5 / std::min(vis.w(), vis.h())) : 0.85;
      EXPECT_GE(overlap, min_overlap) << where << ": box " << box->x1 << "," << box->y1 << "," << box->x2 << ","
                                      << box->y2 << " vs object pixels " << vis.x1 << "," << vis.y1 << "," << vis.x2
                                      << "," << vis.y2;
      // Bilinear resampling moves a thresholded edge by at most half a pixel.
      EXPECT_NEAR(expect.x1, vis.x1, 1.0) << where;
      EXPECT_NEAR(expect.x2, vis.x2, 1.0) << where;
      EXPECT_NEAR(expect.y1, vis.y1, 1.0) << where;
      EXPECT_NEAR(expect.y2, vis.y2, 1.0) << where;
      // Without the convention allowance the raw box still overlaps its object closely (the
      // lowest seen is ~0.79, for the 30 px object magnified ~3x with a cut edge).
      EXPECT_GE(iou(Rect{box->x1, box->y1, box->x2, box->y2}, vis), 0.7) << where;
      ++res.checked;
    }
  }
  return res;
}

TEST(AugmentTrain, CropJitterKeepsBoxesOnTheirObjects) {
  const AugmentOptions cfg;  // darknet yolov2-voc: crop jitter .3, flip, HSV
  ASSERT_EQ(cfg.jitter_mode, JitterMode::Crop);
  const SweepResult r = sweep(cfg, 160, 200);
  // Flips happen, and not always.
  EXPECT_GT(r.flipped, 40);
  EXPECT_LT(r.flipped, 160);
  // Most objects were checked, and the crop cut some objects out entirely.
  EXPECT_GT(r.checked, 200 * 4 * 6 / 10);
  EXPECT_GT(r.dropped, 5);
}

TEST(AugmentTrain, LetterboxJitterKeepsBoxesOnTheirObjects) {
  AugmentOptions cfg;
  cfg.jitter_mode = JitterMode::Letterbox;
  cfg.letterbox_scale = {1, 1};  // PJ darknet since August 2018: the image stays on the canvas
  const SweepResult r = sweep(cfg, 160, 200);
  EXPECT_GT(r.flipped, 40);
  EXPECT_LT(r.flipped, 160);
  // The letterbox placement keeps the whole image on the canvas: nothing is ever cut away, and
  // (squeezed at most to ~.3 of its size) every object stays big enough to check.
  EXPECT_EQ(r.dropped, 0);
  EXPECT_EQ(r.checked + r.kept_tiny, 200 * 4);
  EXPECT_GT(r.checked, 200 * 4 * 9 / 10);
}

TEST(AugmentTrain, NoFlipWhenDisabled) {
  AugmentOptions cfg;
  cfg.flip = false;
  const SweepResult r = sweep(cfg, 96, 40);
  EXPECT_EQ(r.flipped, 0);
}

TEST(AugmentTrain, ImageIsWarpedWithTheDrawnAffine) {
  // With the colour distortion off, the augmented image is exactly the scene rendered through
  // draw.affine: the box transform and the pixels use the same numbers.
  const Scene scene;
  for (JitterMode mode : {JitterMode::Crop, JitterMode::Letterbox}) {
    AugmentOptions cfg;
    cfg.jitter_mode = mode;
    cfg.hue = 0;
    cfg.saturation = 1;
    cfg.exposure = 1;
    for (int seed = 0; seed < 20; ++seed) {
      Rng rng(static_cast<uint64_t>(seed));
      const Augmented a = yolo2::data::augment_train(scene.image, scene.boxes, 128, cfg, rng);
      const cv::Mat expect = yolo2::data::warp_image(scene.image, a.draw.affine, 128, mode == JitterMode::Crop);
      EXPECT_EQ(cv::norm(a.image, expect, cv::NORM_INF), 0.0) << "seed " << seed;
      // And the centre of every kept box shows that object's colour.
      for (const auto& b : a.boxes) {
        if (b.x2 - b.x1 < 6 || b.y2 - b.y1 < 6) continue;
        const cv::Vec3b px =
            a.image.at<cv::Vec3b>(static_cast<int>((b.y1 + b.y2) / 2), static_cast<int>((b.x1 + b.x2) / 2));
        const cv::Scalar want = scene.objects[static_cast<std::size_t>(b.label)].bgr;
        for (int c = 0; c < 3; ++c) EXPECT_NEAR(px[c], want[c], 2) << "seed " << seed << " label " << b.label;
      }
    }
  }
}

TEST(AugmentTrain, SameSeedSameResult) {
  const Scene scene;
  const AugmentOptions cfg;
  Rng r1(42), r2(42), r3(43);
  const Augmented a = yolo2::data::augment_train(scene.image, scene.boxes, 96, cfg, r1);
  const Augmented b = yolo2::data::augment_train(scene.image, scene.boxes, 96, cfg, r2);
  const Augmented c = yolo2::data::augment_train(scene.image, scene.boxes, 96, cfg, r3);
  EXPECT_EQ(cv::norm(a.image, b.image, cv::NORM_INF), 0.0);
  ASSERT_EQ(a.boxes.size(), b.boxes.size());
  for (std::size_t i = 0; i < a.boxes.size(); ++i) EXPECT_EQ(a.boxes[i].x1, b.boxes[i].x1);
  EXPECT_GT(cv::norm(a.image, c.image, cv::NORM_INF), 0.0);
}

// ---- the drawn parameters --------------------------------------------------------------

TEST(AugmentDraw, HsvDistortionRanges) {
  const AugmentOptions cfg;  // hue .1, saturation 1.5, exposure 1.5
  Rng rng(5);
  int sat_lo = 0, sat_hi = 0, exp_lo = 0, exp_hi = 0, hue_neg = 0, hue_pos = 0;
  double hue_min = 1, hue_max = -1;
  for (int i = 0; i < 2000; ++i) {
    const auto d = yolo2::data::draw_augment(300, 200, 416, cfg, rng);
    EXPECT_GE(d.dhue, -0.1);
    EXPECT_LE(d.dhue, 0.1);
    EXPECT_GE(d.dsat, 1 / 1.5 - 1e-12);
    EXPECT_LE(d.dsat, 1.5);
    EXPECT_GE(d.dexp, 1 / 1.5 - 1e-12);
    EXPECT_LE(d.dexp, 1.5);
    sat_lo += d.dsat<1, sat_hi += d.dsat> 1;
    exp_lo += d.dexp<1, exp_hi += d.dexp> 1;
    hue_neg += d.dhue<0, hue_pos += d.dhue> 0;
    hue_min = std::min(hue_min, d.dhue), hue_max = std::max(hue_max, d.dhue);
  }
  // darknet's rand_scale inverts half the draws: both sides of 1 occur about equally.
  EXPECT_GT(sat_lo, 800);
  EXPECT_GT(sat_hi, 800);
  EXPECT_GT(exp_lo, 800);
  EXPECT_GT(exp_hi, 800);
  EXPECT_GT(hue_neg, 800);
  EXPECT_GT(hue_pos, 800);
  // The whole range is used.
  EXPECT_LT(hue_min, -0.09);
  EXPECT_GT(hue_max, 0.09);
}

TEST(AugmentDraw, RandScaleIsInvertedHalfTheTime) {
  Rng rng(9);
  int below = 0;
  for (int i = 0; i < 1000; ++i) {
    const double s = yolo2::data::rand_scale(rng, 2.0);
    EXPECT_GE(s, 0.5);
    EXPECT_LE(s, 2.0);
    below += s < 1;
  }
  EXPECT_GT(below, 400);
  EXPECT_LT(below, 600);
}

TEST(AugmentDraw, CropJitterMovesEachSideWithinJitter) {
  AugmentOptions cfg;
  cfg.flip = false;
  Rng rng(3);
  const int ow = 300, oh = 200, out = 416;
  for (int i = 0; i < 500; ++i) {
    const Affine a = yolo2::data::draw_augment(ow, oh, out, cfg, rng).affine;
    // ax = out / swidth with swidth = ow - pleft - pright and |pleft|, |pright| <= .3 ow.
    const double swidth = out / a.ax, sheight = out / a.ay;
    EXPECT_GE(swidth, ow * 0.4 - 1e-6);
    EXPECT_LE(swidth, ow * 1.6 + 1e-6);
    EXPECT_GE(sheight, oh * 0.4 - 1e-6);
    EXPECT_LE(sheight, oh * 1.6 + 1e-6);
    // pleft = -bx / ax is an integer within [-90, 90].
    const double pleft = -a.bx / a.ax, ptop = -a.by / a.ay;
    EXPECT_NEAR(pleft, std::round(pleft), 1e-6);
    EXPECT_LE(std::abs(pleft), 90 + 1e-6);
    EXPECT_NEAR(ptop, std::round(ptop), 1e-6);
    EXPECT_LE(std::abs(ptop), 60 + 1e-6);
  }
}

TEST(AugmentTrain, LetterboxJitterWithRandomScaleKeepsBoxesOnTheirObjects) {
  AugmentOptions cfg;
  cfg.jitter_mode = JitterMode::Letterbox;  // default scale range [0.25, 2]: PJ darknet 2017-18
  const SweepResult r = sweep(cfg, 160, 200, /*small_object_slack=*/true);
  // Scales above 1 push parts of the image off the canvas: some objects are cut away.
  EXPECT_GT(r.dropped, 5);
  EXPECT_GT(r.checked, 200 * 4 / 3);
}

TEST(AugmentDraw, LetterboxScaleIsDrawnFromItsRange) {
  AugmentOptions cfg;
  cfg.jitter_mode = JitterMode::Letterbox;
  cfg.flip = false;
  ASSERT_EQ(cfg.letterbox_scale, (std::vector<double>{0.25, 2.0}));
  Rng rng(6);
  const int ow = 300, oh = 200, out = 320;
  double lo = 1e9, hi = 0, below_one = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const Affine a = yolo2::data::draw_augment(ow, oh, out, cfg, rng).affine;
    // darknet: the longer side of the placed image is scale * out.
    const double scale = std::max(a.ax * ow, a.ay * oh) / out;
    lo = std::min(lo, scale), hi = std::max(hi, scale);
    below_one += scale < 1;
    // The placement offset lies between 0 and out - placed side (reversed bounds when negative).
    const double nw = a.ax * ow;
    EXPECT_GE(a.bx, std::min(0.0, out - nw) - 1e-9);
    EXPECT_LE(a.bx, std::max(0.0, out - nw) + 1e-9);
  }
  EXPECT_GE(lo, 0.25);
  EXPECT_LT(lo, 0.26);
  EXPECT_LE(hi, 2.0);
  EXPECT_GT(hi, 1.99);
  // Uniform on [0.25, 2]: P(scale < 1) = 0.75 / 1.75.
  EXPECT_NEAR(below_one / n, 0.75 / 1.75, 0.03);
}

TEST(AugmentDraw, LetterboxJitterFillsOneSideAndStaysOnCanvas) {
  AugmentOptions cfg;
  cfg.jitter_mode = JitterMode::Letterbox;
  cfg.letterbox_scale = {1, 1};
  cfg.flip = false;
  Rng rng(4);
  const int ow = 300, oh = 200, out = 320;
  for (int i = 0; i < 500; ++i) {
    const Affine a = yolo2::data::draw_augment(ow, oh, out, cfg, rng).affine;
    const double nw = a.ax * ow, nh = a.ay * oh;
    // PJ darknet since August 2018 (scale 1): the longer side of the placed image spans the input.
    EXPECT_NEAR(std::max(nw, nh), out, 1e-6);
    EXPECT_GE(a.bx, 0.0);
    EXPECT_GE(a.by, 0.0);
    EXPECT_LE(a.bx + nw, out + 1e-6);
    EXPECT_LE(a.by + nh, out + 1e-6);
    // new_ar = (ow +- .3 ow) / (oh +- .3 oh).
    const double ar = nw / nh;
    EXPECT_GE(ar, (ow * 0.7) / (oh * 1.3) - 1e-9);
    EXPECT_LE(ar, (ow * 1.3) / (oh * 0.7) + 1e-9);
  }
}

// ---- eval transforms -------------------------------------------------------------------

TEST(AugmentEval, LetterboxMatchesDarknetLetterboxImage) {
  // darknet letterbox_image, 500x375 -> 416: 416/500 < 416/375, so new_w = 416,
  // new_h = 375 * 416 / 500 = 312, embedded at ((416 - 416) / 2, (416 - 312) / 2) = (0, 52).
  const Affine a = yolo2::data::eval_affine(500, 375, 416, EvalTransform::Letterbox);
  EXPECT_DOUBLE_EQ(a.ax, 416.0 / 500);
  EXPECT_DOUBLE_EQ(a.ay, 312.0 / 375);
  EXPECT_DOUBLE_EQ(a.bx, 0);
  EXPECT_DOUBLE_EQ(a.by, 52);
  // Portrait: the offset moves to x.
  const Affine p = yolo2::data::eval_affine(375, 500, 416, EvalTransform::Letterbox);
  EXPECT_DOUBLE_EQ(p.ax, 312.0 / 375);
  EXPECT_DOUBLE_EQ(p.bx, 52);
  EXPECT_DOUBLE_EQ(p.by, 0);
  // Integer arithmetic: 333x500 -> new_w = 333 * 416 / 500 = 277 (floored), offset (416-277)/2 = 69.
  const Affine q = yolo2::data::eval_affine(333, 500, 416, EvalTransform::Letterbox);
  EXPECT_DOUBLE_EQ(q.ax, 277.0 / 333);
  EXPECT_DOUBLE_EQ(q.ay, 416.0 / 500);
  EXPECT_DOUBLE_EQ(q.bx, 69);
  EXPECT_DOUBLE_EQ(q.by, 0);
  // The inverse maps input pixels back to the original image.
  EXPECT_NEAR(a.inv_y(52), 0.0, 1e-9);
  EXPECT_NEAR(a.inv_y(364), 375.0, 1e-9);
}

TEST(AugmentEval, LetterboxImageHasGrayBandsAndTheImageBetween) {
  const cv::Mat white(375, 500, CV_8UC3, cv::Scalar(255, 255, 255));
  const Affine a = yolo2::data::eval_affine(500, 375, 416, EvalTransform::Letterbox);
  const cv::Mat out = yolo2::data::warp_image(white, a, 416, false);
  ASSERT_EQ(out.rows, 416);
  ASSERT_EQ(out.cols, 416);
  // Rows 52..363 hold the image, the bands above and below are gray 127.
  for (int x : {0, 200, 415}) {
    EXPECT_EQ(out.at<cv::Vec3b>(0, x), cv::Vec3b(127, 127, 127));
    EXPECT_EQ(out.at<cv::Vec3b>(51, x), cv::Vec3b(127, 127, 127));
    EXPECT_EQ(out.at<cv::Vec3b>(52, x), cv::Vec3b(255, 255, 255));
    EXPECT_EQ(out.at<cv::Vec3b>(363, x), cv::Vec3b(255, 255, 255));
    EXPECT_EQ(out.at<cv::Vec3b>(364, x), cv::Vec3b(127, 127, 127));
    EXPECT_EQ(out.at<cv::Vec3b>(415, x), cv::Vec3b(127, 127, 127));
  }
}

TEST(AugmentEval, ResizeStretchesBothSides) {
  const Affine a = yolo2::data::eval_affine(500, 375, 416, EvalTransform::Resize);
  EXPECT_DOUBLE_EQ(a.ax, 416.0 / 500);
  EXPECT_DOUBLE_EQ(a.ay, 416.0 / 375);
  EXPECT_DOUBLE_EQ(a.bx, 0);
  EXPECT_DOUBLE_EQ(a.by, 0);
}

// ---- warp and box primitives -----------------------------------------------------------

TEST(AugmentWarp, IdentityAndFlipArePixelExact) {
  cv::Mat img(64, 64, CV_8UC3);
  cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(256));
  const cv::Mat same = yolo2::data::warp_image(img, Affine{}, 64, true);
  EXPECT_EQ(cv::norm(img, same, cv::NORM_INF), 0.0);
  // x' = -x + 64 mirrors continuous coordinates, i.e. column i lands on column 63 - i.
  const cv::Mat flipped = yolo2::data::warp_image(img, Affine{-1, 64, 1, 0}, 64, true);
  cv::Mat expect;
  cv::flip(img, expect, 1);
  EXPECT_EQ(cv::norm(expect, flipped, cv::NORM_INF), 0.0);
}

TEST(AugmentWarp, UpscaleKeepsContinuousCoordinates) {
  // Column 5 of the source covers [5, 6); at scale 2 it must cover [10, 12) of the output.
  cv::Mat img(10, 10, CV_8UC1, cv::Scalar(0));
  img.col(5).setTo(255);
  const cv::Mat out = yolo2::data::warp_image(img, Affine{2, 0, 1, 0}, 20, true);
  const cv::Mat row = out.row(3);
  for (int x = 0; x < 20; ++x) EXPECT_EQ(row.at<uchar>(x) > 127, x == 10 || x == 11) << "column " << x;
}

TEST(AugmentBoxes, TransformFlipClipAndDrop) {
  const std::vector<LabeledBox> in{{10, 20, 30, 40, 3},      // inside
                                   {-10, 5, 20, 15, 1},      // clipped on the left
                                   {120, 5, 130, 15, 7},     // outside: dropped
                                   {50, 50, 50.05f, 60, 2},  // narrower than min_size: dropped
                                   {60, 60, 70, 70, 4}};
  const auto out = yolo2::data::transform_boxes(in, Affine{1, 0, 1, 0}, 100, 0.001);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].label, 3);
  EXPECT_EQ(out[1].label, 1);
  EXPECT_EQ(out[2].label, 4);  // order kept after drops
  EXPECT_FLOAT_EQ(out[1].x1, 0);
  EXPECT_FLOAT_EQ(out[1].x2, 20);

  // A flip of a 100-wide input swaps and mirrors the x edges.
  const auto f = yolo2::data::transform_boxes({{10, 20, 30, 40, 3}}, Affine{-1, 100, 1, 0}, 100, 0.001);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_FLOAT_EQ(f[0].x1, 70);
  EXPECT_FLOAT_EQ(f[0].x2, 90);
  EXPECT_FLOAT_EQ(f[0].y1, 20);
  EXPECT_FLOAT_EQ(f[0].y2, 40);

  // Scale and offset.
  const auto s = yolo2::data::transform_boxes({{10, 20, 30, 40, 0}}, Affine{0.5, 3, 2, -10}, 200, 0);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_FLOAT_EQ(s[0].x1, 8);
  EXPECT_FLOAT_EQ(s[0].x2, 18);
  EXPECT_FLOAT_EQ(s[0].y1, 30);
  EXPECT_FLOAT_EQ(s[0].y2, 70);
}

TEST(AugmentBoxes, BoxHolesDropEveryBoxAfterADroppedOne) {
  // The middle box leaves the output entirely; the last one stays inside.
  const std::vector<LabeledBox> in{{10, 10, 30, 30, 0}, {150, 150, 180, 180, 1}, {40, 40, 60, 60, 2}};
  const auto packed = yolo2::data::transform_boxes(in, Affine{1, 0, 1, 0}, 100, 0.001, false);
  ASSERT_EQ(packed.size(), 2u);
  EXPECT_EQ(packed[1].label, 2);
  // PJ darknet before 2018-01-16: the dropped box left a zero hole and its region loss stopped there.
  const auto holes = yolo2::data::transform_boxes(in, Affine{1, 0, 1, 0}, 100, 0.001, true);
  ASSERT_EQ(holes.size(), 1u);
  EXPECT_EQ(holes[0].label, 0);
}

// ---- colour ----------------------------------------------------------------------------

cv::Vec3b distorted(cv::Vec3b bgr, double dhue, double dsat, double dexp) {
  cv::Mat m(1, 1, CV_8UC3, cv::Scalar(bgr[0], bgr[1], bgr[2]));
  yolo2::data::distort_hsv(m, dhue, dsat, dexp);
  return m.at<cv::Vec3b>(0, 0);
}

void expect_near_bgr(cv::Vec3b got, cv::Vec3b want, int tol, const std::string& what) {
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(got[c], want[c], tol) << what << " channel " << c;
}

// PJ darknet's distort_image, transcribed independently in double precision: src/image.c
// rgb_to_hsv, scale_image_channel(1, sat), scale_image_channel(2, val), hue shift wrapped once,
// hsv_to_rgb, constrain_image. Returns r, g, b in [0, 1].
std::array<double, 3> darknet_distort_reference(double r, double g, double b, double hue, double sat, double val) {
  const double mx = std::max({r, g, b}), mn = std::min({r, g, b}), delta = mx - mn;
  double h = 0, s = 0, v = mx;
  if (mx > 0) {
    s = delta / mx;
    if (delta > 0) {
      h = r == mx ? (g - b) / delta : g == mx ? 2 + (b - r) / delta : 4 + (r - g) / delta;
      if (h < 0) h += 6;
      h /= 6;
    }
  }
  s *= sat;
  v *= val;
  h += hue;
  if (h > 1) h -= 1;
  if (h < 0) h += 1;
  std::array<double, 3> rgb{v, v, v};
  if (s != 0) {
    const double hh = 6 * h, f = hh - std::floor(hh);
    const double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    switch (static_cast<int>(std::floor(hh))) {
      case 0:
        rgb = {v, t, p};
        break;
      case 1:
        rgb = {q, v, p};
        break;
      case 2:
        rgb = {p, v, t};
        break;
      case 3:
        rgb = {p, q, v};
        break;
      case 4:
        rgb = {t, p, v};
        break;
      default:
        rgb = {v, p, q};
        break;
    }
  }
  for (double& c : rgb) c = std::clamp(c, 0.0, 1.0);
  return rgb;
}

TEST(AugmentHsv, DarknetModeEqualsDarknetsFloatFormulaWithin8BitRounding) {
  // A fixed image: random colours plus grays, pure primaries and near-black pixels.
  cv::Mat img(48, 48, CV_8UC3);
  cv::RNG cvrng(12345);
  cvrng.fill(img, cv::RNG::UNIFORM, cv::Scalar::all(0), cv::Scalar::all(256));
  for (int x = 0; x < 48; ++x) {
    img.at<cv::Vec3b>(0, x) =
        cv::Vec3b(static_cast<uchar>(x * 5), static_cast<uchar>(x * 5), static_cast<uchar>(x * 5));
    img.at<cv::Vec3b>(1, x) = cv::Vec3b(0, 0, static_cast<uchar>(x * 5));
    img.at<cv::Vec3b>(2, x) = cv::Vec3b(static_cast<uchar>(x % 3), static_cast<uchar>(x % 2), 0);
  }
  // Fixed draws, among them the bright ones where clamping S and V early would differ.
  const std::vector<std::array<double, 3>> draws{{0.1, 1.5, 1.5},   {-0.1, 1 / 1.5, 1.5}, {0.07, 1.5, 1 / 1.5},
                                                 {-0.03, 1.4, 1.3}, {0.0, 1.5, 1.0},      {0.1, 1.0, 1.0}};
  for (const auto& [hue, sat, val] : draws) {
    cv::Mat out = img.clone();
    yolo2::data::distort_hsv(out, hue, sat, val, HsvMode::Darknet);
    double worst = 0;
    for (int y = 0; y < img.rows; ++y)
      for (int x = 0; x < img.cols; ++x) {
        const cv::Vec3b in = img.at<cv::Vec3b>(y, x), got = out.at<cv::Vec3b>(y, x);
        const auto want = darknet_distort_reference(in[2] / 255.0, in[1] / 255.0, in[0] / 255.0, hue, sat, val);
        for (int c = 0; c < 3; ++c)
          worst = std::max(worst, std::abs(got[2 - c] - 255 * want[static_cast<std::size_t>(c)]));
      }
    EXPECT_LE(worst, 0.5 + 1e-3) << "hue " << hue << " sat " << sat << " val " << val;
  }
}

TEST(AugmentHsv, DarknetModeDoesNotClampSaturationBeforeConverting) {
  // A bright, saturated orange at S x 1.5, V x 1.5: darknet computes with S = 1.5 (beyond 1) and
  // V > 1, so the minimum channel goes negative and the others past 1 before the final clamp.
  const cv::Vec3b orange(40, 160, 230);  // BGR
  cv::Mat m(1, 1, CV_8UC3, cv::Scalar(orange[0], orange[1], orange[2]));
  yolo2::data::distort_hsv(m, 0, 1.5, 1.5, HsvMode::Darknet);
  const auto want = darknet_distort_reference(230 / 255.0, 160 / 255.0, 40 / 255.0, 0, 1.5, 1.5);
  const cv::Vec3b got = m.at<cv::Vec3b>(0, 0);
  EXPECT_NEAR(got[2], 255 * want[0], 0.5);
  EXPECT_NEAR(got[1], 255 * want[1], 0.5);
  EXPECT_NEAR(got[0], 255 * want[2], 0.5);
  // With S and V clamped to 1 before converting back (the old 8-bit path), green would be
  // 255 * f with f = 0.632, i.e. 161; darknet's unclamped arithmetic gives 187.5.
  EXPECT_GT(got[1], 175);
}

TEST(AugmentHsv, AlexeyabModeSaturatesTheNegativeHueShift) {
  // OpenCV 8-bit HSV: pure red has H = 0; a negative shift saturates at 0 (stays red) where
  // darknet's wraps it around to blue.
  cv::Mat ab(1, 1, CV_8UC3, cv::Scalar(0, 0, 255)), dn = ab.clone();
  yolo2::data::distort_hsv(ab, -1.0 / 3, 1, 1, HsvMode::AlexeyAB);
  yolo2::data::distort_hsv(dn, -1.0 / 3, 1, 1, HsvMode::Darknet);
  expect_near_bgr(ab.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 255), 1, "alexeyab red - 1/3");
  expect_near_bgr(dn.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 0, 0), 1, "darknet red - 1/3");
  // S and V saturate at 255 in 8 bits.
  cv::Mat v(1, 1, CV_8UC3, cv::Scalar(0, 0, 200));
  yolo2::data::distort_hsv(v, 0, 1, 1.5, HsvMode::AlexeyAB);
  expect_near_bgr(v.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 255), 1, "alexeyab exposure 1.5");
}

TEST(AugmentHsv, HueShiftRotatesAroundTheColourCircle) {
  const cv::Vec3b red(0, 0, 255);
  // +1/3 of the circle: red -> green; -1/3 (wrapping below 0): red -> blue.
  expect_near_bgr(distorted(red, 1.0 / 3, 1, 1), cv::Vec3b(0, 255, 0), 6, "red + 1/3");
  expect_near_bgr(distorted(red, -1.0 / 3, 1, 1), cv::Vec3b(255, 0, 0), 6, "red - 1/3");
  // A gray pixel has no hue to shift.
  expect_near_bgr(distorted(cv::Vec3b(90, 90, 90), 0.1, 1, 1), cv::Vec3b(90, 90, 90), 1, "gray");
}

TEST(AugmentHsv, SaturationAndExposureScale) {
  const cv::Vec3b red(0, 0, 255);
  // V x 0.5: half as bright.
  expect_near_bgr(distorted(red, 0, 1, 0.5), cv::Vec3b(0, 0, 128), 2, "exposure .5");
  // S x 0.5: the minimum channel rises to V (1 - S) = 128.
  expect_near_bgr(distorted(red, 0, 0.5, 1), cv::Vec3b(128, 128, 255), 2, "saturation .5");
  // Scales above 1 saturate at 255 instead of wrapping.
  expect_near_bgr(distorted(cv::Vec3b(0, 0, 200), 0, 1, 1.5), cv::Vec3b(0, 0, 255), 1, "exposure 1.5");
  // The identity changes nothing.
  cv::Mat img(8, 8, CV_8UC3);
  cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(256));
  cv::Mat copy = img.clone();
  yolo2::data::distort_hsv(copy, 0, 1, 1);
  EXPECT_EQ(cv::norm(img, copy, cv::NORM_INF), 0.0);
}

}  // namespace

// darknet's colour distortion as tensor ops (what a GPU runs on a device_side batch, here on the CPU)
// equals the host's per-pixel loop bit for bit: random images with gray, black, white and saturated
// pixels, draws that wrap the hue both ways and push S and V past 1, and the identity draw.
TEST(AugmentHsv, TensorOpsEqualTheHostLoopBitForBit) {
  Rng rng(17);
  const int n = 12, h = 9, w = 23;
  cv::Mat base(h, w, CV_8UC3);
  std::vector<cv::Mat> expected;
  at::Tensor rgb = at::empty({n, h, w, 3}, at::kByte), draws = at::empty({n, 3}, at::kFloat);
  for (int i = 0; i < n; ++i) {
    cv::randu(base, cv::Scalar::all(0), cv::Scalar::all(256));
    base.at<cv::Vec3b>(0, 0) = cv::Vec3b(0, 0, 0);
    base.at<cv::Vec3b>(0, 1) = cv::Vec3b(255, 255, 255);
    base.at<cv::Vec3b>(0, 2) = cv::Vec3b(77, 77, 77);
    base.at<cv::Vec3b>(0, 3) = cv::Vec3b(0, 0, 255);
    base.at<cv::Vec3b>(0, 4) = cv::Vec3b(10, 250, 10);
    base.at<cv::Vec3b>(0, 5) = cv::Vec3b(200, 200, 3);
    const float dhue = i == 0 ? 0.f : static_cast<float>(rng.uniform(-0.5, 0.5));
    const float dsat = i == 0 ? 1.f : static_cast<float>(rng.uniform(0.2, 4.0));
    const float dexp = i == 0 ? 1.f : static_cast<float>(rng.uniform(0.2, 4.0));
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c) rgb[i][y][x][c] = base.at<cv::Vec3b>(y, x)[2 - c];
    draws[i][0] = dhue, draws[i][1] = dsat, draws[i][2] = dexp;
    cv::Mat host = base.clone();
    yolo2::data::distort_hsv(host, dhue, dsat, dexp, HsvMode::Darknet);
    expected.push_back(host);
  }
  const at::Tensor out = yolo2::data::distort_hsv_batch(rgb, draws).contiguous();
  ASSERT_EQ(out.sizes(), rgb.sizes());
  int differ = 0;
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c)
          differ += out[i][y][x][c].item<uint8_t>() != expected[static_cast<std::size_t>(i)].at<cv::Vec3b>(y, x)[2 - c];
  EXPECT_EQ(differ, 0) << "of " << n * h * w * 3 << " channel values";
}

// AlexeyAB's colour arithmetic as tensor ops against OpenCV's own 8-bit cvtColor path (distort_hsv):
// the hue shift saturating at both ends, S and V saturating at 255, every byte of every channel, and
// the identity draw (the image unchanged, not an 8-bit HSV round trip). OpenCV truncates its vector
// loop's results and rounds the pixels it leaves over, so the two agree within one level, exactly
// on almost every value; on OpenCV's vector-loop pixels alone (a row long enough, compared in its
// first 64 pixels: one AVX-512 block), exactly.
TEST(AugmentHsv, AlexeyabTensorOpsEqualOpenCvWithinOneLevel) {
  Rng rng(23);
  const int n = 10, h = 7, w = 200;
  at::Tensor rgb = at::empty({n, h, w, 3}, at::kByte), draws = at::empty({n, 3}, at::kDouble);
  std::vector<cv::Mat> expected, inputs;
  for (int i = 0; i < n; ++i) {
    cv::Mat base(h, w, CV_8UC3);
    cv::randu(base, cv::Scalar::all(0), cv::Scalar::all(256));
    for (int k = 0; k < 256; ++k)
      base.at<cv::Vec3b>(k % h, (k * 7) % w) =
          cv::Vec3b(static_cast<uchar>(k), static_cast<uchar>(255 - k), static_cast<uchar>((k * 3) % 256));
    base.at<cv::Vec3b>(0, 0) = cv::Vec3b(0, 0, 0);
    base.at<cv::Vec3b>(0, 1) = cv::Vec3b(255, 255, 255);
    base.at<cv::Vec3b>(0, 2) = cv::Vec3b(0, 0, 255);
    const double dhue = i == 0 ? 0 : i == 1 ? -0.5 : i == 2 ? 0.5 : rng.uniform(-0.5, 0.5);
    const double dsat = i == 0 ? 1 : rng.uniform(0.2, 4.0), dexp = i == 0 ? 1 : rng.uniform(0.2, 4.0);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c) rgb[i][y][x][c] = base.at<cv::Vec3b>(y, x)[2 - c];
    draws[i][0] = dhue, draws[i][1] = dsat, draws[i][2] = dexp;
    cv::Mat host = base.clone();
    yolo2::data::distort_hsv(host, dhue, dsat, dexp, HsvMode::AlexeyAB);
    expected.push_back(host);
  }
  const at::Tensor out = yolo2::data::distort_hsv_batch(rgb, draws, HsvMode::AlexeyAB).contiguous();
  ASSERT_EQ(out.sizes(), rgb.sizes());
  int differ = 0, worst = 0, differ_head = 0;
  const uint8_t* o = out.data_ptr<uint8_t>();
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c) {
          const int got = o[((i * h + y) * w + x) * 3 + c];
          const int want = expected[static_cast<std::size_t>(i)].at<cv::Vec3b>(y, x)[2 - c];
          differ += got != want;
          differ_head += got != want && y * w + x < 64;
          worst = std::max(worst, std::abs(got - want));
        }
  EXPECT_LE(worst, 1);
  EXPECT_EQ(differ_head, 0);
  EXPECT_LT(differ, n * h * w * 3 / 100) << "of " << n * h * w * 3 << " channel values";
  EXPECT_TRUE(at::equal(out[0], rgb[0]));   // the identity draw
  EXPECT_FALSE(at::equal(out[1], rgb[1]));  // the others change the images
}
