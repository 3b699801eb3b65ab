#include "yolo2/eval/decode.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>

#include "yolo2/error.hpp"
#include "yolo2/ops/boxes.hpp"
#include "yolo2/ops/region_coder.hpp"

namespace yolo2::eval {

RegionDecoded decode_region(const at::Tensor& raw, const std::vector<double>& anchors, int num_classes) {
  const auto a = static_cast<int64_t>(anchors.size() / 2);
  const ops::RegionParts p = ops::split_region(raw.detach().to(at::kFloat), a, num_classes);
  const int64_t b = raw.size(0), n = raw.size(2) * raw.size(3) * a;
  // [B, A, H, W, ...] -> [B, H, W, A, ...]: one row per (cell, anchor).
  RegionDecoded d;
  d.boxes = ops::decode_boxes(p, anchors).permute({0, 2, 3, 1, 4}).reshape({b, n, 4});
  d.objectness = p.obj.permute({0, 2, 3, 1}).reshape({b, n});
  d.class_probs = at::softmax(p.logits.permute({0, 3, 4, 1, 2}).reshape({b, n, num_classes}), 2);
  return d;
}

namespace {

// Detections from the kept candidates (`keep`: indices in descending score order), at most
// max_detections of them.
std::vector<Detection> to_detections(const std::vector<int64_t>& keep, const float* boxes, const float* scores,
                                     const int64_t* labels, int image_index, int max_detections) {
  std::vector<Detection> out;
  const std::size_t limit = std::min<std::size_t>(keep.size(), static_cast<std::size_t>(std::max(0, max_detections)));
  out.reserve(limit);
  for (std::size_t j = 0; j < limit; ++j) {
    const auto i = static_cast<std::size_t>(keep[j]);
    Detection det;
    det.image = image_index;
    det.label = static_cast<int>(labels[i]);
    det.score = scores[i];
    det.box = PixelBox{boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]};
    out.push_back(det);
  }
  return out;
}

}  // namespace

std::vector<Detection> detect_image(const RegionDecoded& d, int64_t b, const data::Affine& tr, int input_w, int input_h,
                                    int image_w, int image_h, int image_index, const DetectOptions& o) {
  if (d.boxes.is_cuda()) return detect_image_on_device(d, b, tr, input_w, input_h, image_w, image_h, image_index, o);
  const at::Tensor boxes = d.boxes[b].to(at::kCPU).contiguous();                                          // [N, 4]
  const at::Tensor scores = (d.objectness[b].unsqueeze(1) * d.class_probs[b]).to(at::kCPU).contiguous();  // [N, C]
  const int64_t n = scores.size(0), c = scores.size(1);
  const float* bx = boxes.data_ptr<float>();
  const float* sc = scores.data_ptr<float>();
  // Candidates: every (prediction, class) above the threshold, as darknet keeps a box per class.
  std::vector<float> cand_boxes, cand_scores;
  std::vector<int64_t> cand_labels;
  for (int64_t i = 0; i < n; ++i) {
    const float* p = bx + 4 * i;
    bool mapped = false;
    float xyxy[4];
    for (int64_t k = 0; k < c; ++k) {
      const float s = sc[i * c + k];
      if (!(s > o.score_threshold)) continue;
      if (!mapped) {
        // Network-input pixels -> original pixels through the inverse eval transform, clipped.
        const auto in_w = static_cast<float>(input_w), in_h = static_cast<float>(input_h);
        const double x1 = tr.inv_x((p[0] - p[2] / 2) * in_w), x2 = tr.inv_x((p[0] + p[2] / 2) * in_w);
        const double y1 = tr.inv_y((p[1] - p[3] / 2) * in_h), y2 = tr.inv_y((p[1] + p[3] / 2) * in_h);
        xyxy[0] = static_cast<float>(std::clamp(std::min(x1, x2), 0.0, image_w - 1.0));
        xyxy[2] = static_cast<float>(std::clamp(std::max(x1, x2), 0.0, image_w - 1.0));
        xyxy[1] = static_cast<float>(std::clamp(std::min(y1, y2), 0.0, image_h - 1.0));
        xyxy[3] = static_cast<float>(std::clamp(std::max(y1, y2), 0.0, image_h - 1.0));
        mapped = true;
      }
      cand_boxes.insert(cand_boxes.end(), xyxy, xyxy + 4);
      cand_scores.push_back(s);
      cand_labels.push_back(k);
    }
  }
  const std::vector<int64_t> keep = ops::batched_nms(cand_boxes.data(), cand_scores.data(), cand_labels.data(),
                                                     static_cast<int64_t>(cand_scores.size()), o.nms_threshold);
  return to_detections(keep, cand_boxes.data(), cand_scores.data(), cand_labels.data(), image_index, o.max_detections);
}

std::vector<Detection> detect_image_on_device(const RegionDecoded& d, int64_t b, const data::Affine& tr, int input_w,
                                              int input_h, int image_w, int image_h, int image_index,
                                              const DetectOptions& o) {
  const at::Tensor p = d.boxes[b];                                            // [N, 4]
  const at::Tensor scores = d.objectness[b].unsqueeze(1) * d.class_probs[b];  // [N, C]
  // Candidates in detect_image's order (prediction, then class): nonzero is row-major.
  const at::Tensor ik = (scores > static_cast<double>(o.score_threshold)).nonzero();
  if (ik.size(0) == 0) return {};
  const at::Tensor i = ik.select(1, 0), k = ik.select(1, 1);
  const at::Tensor pb = p.index_select(0, i);
  const at::Tensor cx = pb.select(1, 0), cy = pb.select(1, 1), hw = pb.select(1, 2) / 2, hh = pb.select(1, 3) / 2;
  // The same arithmetic as detect_image: float to network pixels, then the inverse transform in
  // double, the clip in double, the corner in float.
  // Divided by a 0-dim tensor on the same device: CUDA turns a division by a host scalar into a
  // multiplication by its reciprocal, which can differ from the true quotient in the last bit.
  const auto inverse = [](const at::Tensor& v, double a, double off) {
    const at::Tensor x = v.to(at::kDouble) - off;
    return x / at::scalar_tensor(a, x.options());
  };
  const auto in_w = static_cast<double>(static_cast<float>(input_w)),
             in_h = static_cast<double>(static_cast<float>(input_h));
  const at::Tensor x1 = inverse((cx - hw) * in_w, tr.ax, tr.bx), x2 = inverse((cx + hw) * in_w, tr.ax, tr.bx);
  const at::Tensor y1 = inverse((cy - hh) * in_h, tr.ay, tr.by), y2 = inverse((cy + hh) * in_h, tr.ay, tr.by);
  const auto clip = [](const at::Tensor& v, int side) { return v.clamp(0.0, side - 1.0).to(at::kFloat); };
  const at::Tensor boxes = at::stack({clip(at::minimum(x1, x2), image_w), clip(at::minimum(y1, y2), image_h),
                                      clip(at::maximum(x1, x2), image_w), clip(at::maximum(y1, y2), image_h)},
                                     1);
  const at::Tensor cand_scores = scores.reshape({-1}).index_select(0, i * scores.size(1) + k);
  const at::Tensor keep = ops::batched_nms_on_device(boxes, cand_scores, k, o.nms_threshold);
  const int64_t limit = std::min<int64_t>(keep.size(0), std::max(0, o.max_detections));
  // Only the kept candidates come to the host.
  const at::Tensor kept = keep.narrow(0, 0, limit).to(boxes.device());
  const at::Tensor kb = boxes.index_select(0, kept).to(at::kCPU).contiguous();
  const at::Tensor ks = cand_scores.index_select(0, kept).to(at::kCPU, at::kFloat).contiguous();
  const at::Tensor kl = k.index_select(0, kept).to(at::kCPU, at::kLong).contiguous();
  std::vector<int64_t> order(static_cast<std::size_t>(limit));
  std::iota(order.begin(), order.end(), int64_t{0});
  return to_detections(order, kb.data_ptr<float>(), ks.data_ptr<float>(), kl.data_ptr<int64_t>(), image_index,
                       o.max_detections);
}

}  // namespace yolo2::eval
