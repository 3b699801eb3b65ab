#include "yolo2/loss/region_targets.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <unordered_map>

#include "yolo2/ops/region_coder.hpp"

namespace yolo2::loss {
namespace {

// One ground truth as darknet's loop meets it.
struct Assigned {
  int64_t flat;
  ops::EncodedBox code;
  float weight;
  int64_t label;
  float cx, cy, w, h;
};

// Host rows -> tensors; at::tensor copies, so autograd may keep them after the vectors are gone.
at::Tensor long_tensor(const std::vector<int64_t>& v) { return at::tensor(v, at::kLong); }
at::Tensor float_rows(const std::vector<float>& v, int64_t cols) { return at::tensor(v, at::kFloat).view({-1, cols}); }

void fill_rows(const std::vector<Assigned>& all, const std::vector<std::size_t>& pick, RegionTargets& t) {
  std::vector<int64_t> flat, labels;
  std::vector<float> coords, weight, boxes;
  for (const std::size_t k : pick) {
    const Assigned& s = all[k];
    flat.push_back(s.flat), labels.push_back(s.label), weight.push_back(s.weight);
    coords.insert(coords.end(), {s.code.tx, s.code.ty, s.code.tw, s.code.th});
    boxes.insert(boxes.end(), {s.cx, s.cy, s.w, s.h});
  }
  t.flat = long_tensor(flat), t.labels = long_tensor(labels), t.weight = at::tensor(weight, at::kFloat);
  t.coords = float_rows(coords, 4), t.boxes = float_rows(boxes, 4);
}

}  // namespace

namespace {

// The tensors as one flat buffer of `dtype` (pinned when `pin`), copied to `device` in one transfer
// (asynchronous from pinned memory), then cut back into their shapes and types there.
std::vector<at::Tensor> transfer_packed(const std::vector<at::Tensor>& parts, at::ScalarType dtype,
                                        const c10::Device& device, bool pin) {
  int64_t total = 0;
  for (const auto& t : parts) total += t.numel();
  at::Tensor buffer = at::empty({total}, at::TensorOptions(dtype).pinned_memory(pin));
  int64_t at = 0;
  for (const auto& t : parts) {
    buffer.narrow(0, at, t.numel()).copy_(t.reshape({-1}));
    at += t.numel();
  }
  const at::Tensor moved = buffer.to(device, /*non_blocking=*/pin);
  std::vector<at::Tensor> out;
  at = 0;
  for (const auto& t : parts) {
    out.push_back(moved.narrow(0, at, t.numel()).view(t.sizes()).to(t.scalar_type()));
    at += t.numel();
  }
  return out;
}

}  // namespace

RegionTargets RegionTargets::to_packed(const c10::Device& device) const {
  // Two transfers (the integers, the floats) instead of one per tensor: on a GPU, from pinned memory
  // and asynchronously (a pageable copy would wait for every kernel already queued).
  const bool pin = device.is_cuda();
  const auto ints = transfer_packed({flat, labels, all_flat, all_labels, image_valid}, at::kLong, device, pin);
  const auto floats = transfer_packed({coords, weight, boxes, all_boxes, image_boxes}, at::kFloat, device, pin);
  RegionTargets t;
  t.flat = ints[0], t.labels = ints[1], t.all_flat = ints[2], t.all_labels = ints[3], t.image_valid = ints[4];
  t.coords = floats[0], t.weight = floats[1], t.boxes = floats[2], t.all_boxes = floats[3], t.image_boxes = floats[4];
  return t;
}

RegionTargets RegionTargets::to(const c10::Device& device) const {
  if (device.is_cuda() && flat.device().is_cpu()) return to_packed(device);
  RegionTargets t;
  t.flat = flat.to(device), t.labels = labels.to(device), t.coords = coords.to(device);
  t.weight = weight.to(device), t.boxes = boxes.to(device);
  t.all_flat = all_flat.to(device), t.all_labels = all_labels.to(device), t.all_boxes = all_boxes.to(device);
  t.image_boxes = image_boxes.to(device), t.image_valid = image_valid.to(device);
  return t;
}

RegionTargets assign_targets(const at::Tensor& boxes, const at::Tensor& labels, const at::Tensor& counts,
                             int64_t grid_h, int64_t grid_w, const TargetOptions& o) {
  TORCH_CHECK(boxes.dim() == 3 && boxes.size(2) == 4, "region targets: boxes must be [B, M, 4], got ", boxes.sizes());
  const at::Tensor boxes_c = boxes.to(at::kCPU, at::kFloat).contiguous();
  const at::Tensor labels_c = labels.to(at::kCPU, at::kLong).contiguous();
  const at::Tensor counts_c = counts.to(at::kCPU, at::kLong).contiguous();
  const int64_t b_n = boxes_c.size(0), m_n = boxes_c.size(1), a_n = static_cast<int64_t>(o.anchors.size() / 2);
  const int64_t m_use = std::min<int64_t>(m_n, o.max_boxes), m_pad = std::max<int64_t>(m_use, 1);
  const float* bp = boxes_c.data_ptr<float>();
  const int64_t* lp = labels_c.data_ptr<int64_t>();
  const int64_t* cp = counts_c.data_ptr<int64_t>();
  std::vector<float> image_boxes(static_cast<std::size_t>(b_n * m_pad * 4), 0.0f);
  std::vector<uint8_t> valid(static_cast<std::size_t>(b_n * m_pad), 0);
  std::vector<Assigned> all;        // darknet's loop order
  std::vector<std::size_t> winner;  // per (cell, anchor): index into `all` of the last writer
  std::unordered_map<int64_t, std::size_t> slot;
  for (int64_t b = 0; b < b_n; ++b) {
    for (int64_t t = 0; t < std::min<int64_t>(cp[b], m_use); ++t) {
      const float* q = bp + (b * m_n + t) * 4;
      const float w = q[2] - q[0], h = q[3] - q[1];
      if (!(w > 0) || !(h > 0)) continue;
      const float x = (q[0] + q[2]) / 2, y = (q[1] + q[3]) / 2;
      const auto g = static_cast<std::size_t>(b * m_pad + t);
      float* ib = image_boxes.data() + 4 * g;
      ib[0] = x, ib[1] = y, ib[2] = w, ib[3] = h;
      valid[g] = 1;
      Assigned s{0, ops::encode_box(x, y, w, h, grid_w, grid_h, o.anchors), 0, lp[b * m_n + t], x, y, w, h};
      TORCH_CHECK(s.label >= 0 && s.label < o.num_classes, "region_loss: label ", s.label, " out of range [0, ",
                  o.num_classes, ")");
      s.flat = ((b * a_n + s.code.anchor) * grid_h + s.code.j) * grid_w + s.code.i;
      s.weight = static_cast<float>(o.coord_scale * (o.small_box_weight ? 2.0 - w * h : 1.0));
      all.push_back(s);
      const auto [it, inserted] = slot.emplace(s.flat, winner.size());
      if (inserted)
        winner.push_back(all.size() - 1);
      else
        winner[it->second] = all.size() - 1;  // a later ground truth overwrites
    }
  }
  RegionTargets out;
  fill_rows(all, winner, out);
  std::vector<std::size_t> every(all.size());
  for (std::size_t k = 0; k < every.size(); ++k) every[k] = k;
  RegionTargets each;
  fill_rows(all, every, each);
  out.all_flat = each.flat, out.all_labels = each.labels, out.all_boxes = each.boxes;
  out.image_boxes = at::tensor(image_boxes, at::kFloat).view({b_n, m_pad, 4});
  out.image_valid = at::tensor(valid, at::kByte).view({b_n, m_pad}).to(at::kBool);
  return out;
}

}  // namespace yolo2::loss
