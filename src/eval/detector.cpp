#include "yolo2/eval/detector.hpp"

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>

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
  const double font = std::max(0.4, std::max(out.cols, out.rows) / 800.0);
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
    const cv::Size ts = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font, 1, &base);
    const int ty = std::max(ts.height + 2, p1.y);
    cv::rectangle(out, cv::Point(p1.x, ty - ts.height - 2), cv::Point(p1.x + ts.width + 2, ty + base - 1), colour,
                  cv::FILLED);
    const double lum = 0.299 * colour[2] + 0.587 * colour[1] + 0.114 * colour[0];
    cv::putText(out, text, cv::Point(p1.x + 1, ty - 1), cv::FONT_HERSHEY_SIMPLEX, font,
                lum > 140 ? cv::Scalar(0, 0, 0) : cv::Scalar(255, 255, 255), 1, cv::LINE_AA);
  }
  return out;
}

}  // namespace yolo2::eval
