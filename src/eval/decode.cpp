#include "yolo2/eval/decode.hpp"

#include <ATen/ATen.h>

#include <algorithm>

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
  return detect_batch(d, {{b, tr, image_w, image_h, image_index}}, input_w, input_h, o).front();
}

namespace {

// Per image on the host: detect_image's NMS on the same candidates in the same order. `packed`: one
// row per candidate (image, class, score, x1, y1, x2, y2), images in order.
void nms_per_image(const at::Tensor& packed, const std::vector<BatchImage>& images, const DetectOptions& o,
                   std::vector<std::vector<Detection>>& out) {
  const double* row = packed.data_ptr<double>();
  const int64_t total = packed.size(0);
  std::vector<float> boxes, cand;
  std::vector<int64_t> labels;
  for (int64_t first = 0; first < total;) {
    const auto image = static_cast<int64_t>(row[7 * first]);
    int64_t last = first;
    boxes.clear(), cand.clear(), labels.clear();
    for (; last < total && static_cast<int64_t>(row[7 * last]) == image; ++last) {
      const double* r = row + 7 * last;
      labels.push_back(static_cast<int64_t>(r[1]));
      cand.push_back(static_cast<float>(r[2]));
      for (int q = 3; q < 7; ++q) boxes.push_back(static_cast<float>(r[q]));
    }
    const std::vector<int64_t> keep =
        ops::batched_nms(boxes.data(), cand.data(), labels.data(), static_cast<int64_t>(cand.size()), o.nms_threshold);
    out[static_cast<std::size_t>(image)] =
        to_detections(keep, boxes.data(), cand.data(), labels.data(),
                      images[static_cast<std::size_t>(image)].image_index, o.max_detections);
    first = last;
  }
}

// The images' rows of the batch, and what maps each back to its pixels (ax, bx, ay, by, image_w - 1,
// image_h - 1): one small copy to the device.
std::pair<at::Tensor, at::Tensor> image_rows(const std::vector<BatchImage>& images, const c10::Device& device) {
  const auto n_img = static_cast<int64_t>(images.size());
  at::Tensor rows = at::empty({n_img}, at::kLong), meta = at::empty({n_img, 6}, at::kDouble);
  for (int64_t j = 0; j < n_img; ++j) {
    const BatchImage& im = images[static_cast<std::size_t>(j)];
    rows.data_ptr<int64_t>()[j] = im.b;
    double* m = meta.data_ptr<double>() + 6 * j;
    m[0] = im.transform.ax, m[1] = im.transform.bx, m[2] = im.transform.ay, m[3] = im.transform.by;
    m[4] = im.image_w - 1.0, m[5] = im.image_h - 1.0;
  }
  return {rows.to(device), meta.to(device)};
}

}  // namespace

std::vector<std::vector<Detection>> detect_batch(const RegionDecoded& d, const std::vector<BatchImage>& images,
                                                 int input_w, int input_h, const DetectOptions& o) {
  std::vector<std::vector<Detection>> out(images.size());
  if (images.empty()) return out;
  const c10::Device device = d.boxes.device();
  const auto n_img = static_cast<int64_t>(images.size());
  const auto [rows, meta] = image_rows(images, device);
  const at::Tensor scores = d.objectness.index_select(0, rows).unsqueeze(2) * d.class_probs.index_select(0, rows);
  const int64_t n = scores.size(1), c = scores.size(2);
  // Candidates in detect_image's order, image by image (prediction, then class): nonzero is row-major.
  // Its count is the one wait for the device.
  const at::Tensor jik = (scores > static_cast<double>(o.score_threshold)).nonzero();
  if (jik.size(0) == 0) return out;
  const at::Tensor j = jik.select(1, 0), i = jik.select(1, 1), k = jik.select(1, 2);
  const at::Tensor pb = d.boxes.index_select(0, rows).reshape({n_img * n, 4}).index_select(0, j * n + i);
  const at::Tensor cx = pb.select(1, 0), cy = pb.select(1, 1), hw = pb.select(1, 2) / 2, hh = pb.select(1, 3) / 2;
  const at::Tensor m = meta.index_select(0, j);  // [K, 6]: ax, bx, ay, by, image_w - 1, image_h - 1
  // detect_image's arithmetic: float to network pixels, then the inverse transform in double (a true
  // division: a tensor divisor, never a host scalar, which CUDA turns into a reciprocal multiply),
  // the clip in double, the corner in float.
  const auto inverse = [&](const at::Tensor& v, int64_t a, int64_t off) {
    return (v.to(at::kDouble) - m.select(1, off)) / m.select(1, a);
  };
  const auto in_w = static_cast<double>(static_cast<float>(input_w)),
             in_h = static_cast<double>(static_cast<float>(input_h));
  const at::Tensor x1 = inverse((cx - hw) * in_w, 0, 1), x2 = inverse((cx + hw) * in_w, 0, 1);
  const at::Tensor y1 = inverse((cy - hh) * in_h, 2, 3), y2 = inverse((cy + hh) * in_h, 2, 3);
  const auto clip = [&](const at::Tensor& v, int64_t side) {
    return at::minimum(v.clamp_min(0.0), m.select(1, side)).to(at::kFloat);
  };
  const at::Tensor cand_scores = scores.reshape({-1}).index_select(0, (j * n + i) * c + k);
  // One transfer: image, class, score and corners of every candidate (floats are exact in double).
  const at::Tensor packed =
      at::stack({j.to(at::kDouble), k.to(at::kDouble), cand_scores.to(at::kDouble),
                 clip(at::minimum(x1, x2), 4).to(at::kDouble), clip(at::minimum(y1, y2), 5).to(at::kDouble),
                 clip(at::maximum(x1, x2), 4).to(at::kDouble), clip(at::maximum(y1, y2), 5).to(at::kDouble)},
                1)
          .to(at::kCPU)
          .contiguous();
  nms_per_image(packed, images, o, out);
  return out;
}

}  // namespace yolo2::eval
