#include "yolo2/eval/detector.hpp"

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdio>

#include "yolo2/data/augment.hpp"
#include "yolo2/util/plot.hpp"

namespace yolo2::eval {

Detector::Detector(model::YoloV2Impl& model, const DetectorOptions& options, const c10::Device& device)
    : net_(model), options_(options), device_(device) {}

std::vector<Detection> Detector::detect(const cv::Mat& bgr, const DetectOptions& options) const {
  c10::InferenceMode no_autograd;  // no graph kept for the forward pass
  const int s = options_.input_size;
  const data::Affine tr = data::eval_affine(bgr.cols, bgr.rows, s, options_.eval_transform);
  const cv::Mat sized = data::warp_image(bgr, tr, s, false);
  cv::Mat rgb;
  cv::cvtColor(sized, rgb, cv::COLOR_BGR2RGB);
  const at::Tensor x = at::from_blob(rgb.data, {1, s, s, 3}, at::kByte)
                           .permute({0, 3, 1, 2})
                           .to(at::kFloat)
                           .div_(255.0)
                           .contiguous()
                           .to(device_);
  const RegionDecoded d = decode_region(net_.forward(x), net_.spec().anchors, net_.spec().num_classes);
  return detect_image(d, 0, tr, s, s, bgr.cols, bgr.rows, 0, options);
}

cv::Mat draw_detections(const cv::Mat& bgr, const std::vector<Detection>& dets, const std::vector<std::string>& names) {
  cv::Mat out = bgr.clone();
  const int thick = std::max(1, static_cast<int>(std::lround(std::max(out.cols, out.rows) / 300.0)));
  // The font follows the image: 0.65 at 416 px, 1.7 at 1080 px, no smaller than 0.3 (a 128-px image).
  const double font = std::clamp(std::min(out.cols, out.rows) / 640.0, 0.3, 2.5);
  const int text_thick = std::max(1, static_cast<int>(std::lround(font)));
  // Lowest scores first so the strongest boxes are drawn on top.
  std::vector<const Detection*> order;
  for (const auto& d : dets) order.push_back(&d);
  std::sort(order.begin(), order.end(), [](const Detection* a, const Detection* b) { return a->score < b->score; });
  for (const Detection* d : order) {
    const cv::Scalar colour = util::palette_colour(d->label);
    const cv::Point p1(static_cast<int>(std::lround(d->box.x1)), static_cast<int>(std::lround(d->box.y1)));
    const cv::Point p2(static_cast<int>(std::lround(d->box.x2)), static_cast<int>(std::lround(d->box.y2)));
    cv::rectangle(out, p1, p2, colour, thick, cv::LINE_AA);
    char text[128];
    const std::string name = d->label >= 0 && d->label < static_cast<int>(names.size())
                                 ? names[static_cast<std::size_t>(d->label)]
                                 : std::to_string(d->label);
    std::snprintf(text, sizeof(text), "%s %.2f", name.c_str(), d->score);
    int base = 0;
    const cv::Size ts = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font, text_thick, &base);
    // The label stays inside the image: above the box where there is room, else inside its top edge;
    // shifted left at the right edge.
    const int lw = ts.width + 2, lh = ts.height + base + 2;
    const int lx = std::clamp(p1.x, 0, std::max(0, out.cols - lw));
    const int top = p1.y - lh >= 0 ? p1.y - lh : std::clamp(p1.y, 0, std::max(0, out.rows - lh));
    cv::rectangle(out, cv::Point(lx, top), cv::Point(lx + lw - 1, top + lh - 1), colour, cv::FILLED);
    const double lum = 0.299 * colour[2] + 0.587 * colour[1] + 0.114 * colour[0];
    cv::putText(out, text, cv::Point(lx + 1, top + ts.height + 1), cv::FONT_HERSHEY_SIMPLEX, font,
                lum > 140 ? cv::Scalar(0, 0, 0) : cv::Scalar(255, 255, 255), text_thick, cv::LINE_AA);
  }
  return out;
}

}  // namespace yolo2::eval
