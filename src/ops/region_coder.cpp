#include "yolo2/ops/region_coder.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <utility>

#include "yolo2/ops/boxes.hpp"

namespace yolo2::ops {

RegionParts split_region(const at::Tensor& raw, int64_t num_anchors, int64_t num_classes) {
  const int64_t e_n = 5 + num_classes;
  TORCH_CHECK(raw.dim() == 4 && raw.size(1) == num_anchors * e_n, "region output must be [B, ", num_anchors * e_n,
              ", H, W], got ", raw.sizes());
  const at::Tensor r = raw.view({raw.size(0), num_anchors, e_n, raw.size(2), raw.size(3)});
  RegionParts p;
  p.x = r.select(2, 0).sigmoid();
  p.y = r.select(2, 1).sigmoid();
  p.w = r.select(2, 2);
  p.h = r.select(2, 3);
  p.obj = r.select(2, 4).sigmoid();
  p.logits = r.narrow(2, 5, num_classes);
  return p;
}

at::Tensor anchor_table(const std::vector<double>& anchors, const c10::Device& device) {
  at::Tensor host = at::tensor(std::vector<float>(anchors.begin(), anchors.end()), at::kFloat);
  if (!device.is_cuda()) return host;
  // One copy per GPU and anchor list for the whole process, made with a blocking copy once (then
  // safe to read from any stream): the loss and every evaluation batch decode with the same few
  // floats, which would otherwise be pinned and copied each time. Never freed, so that no CUDA
  // tensor is destroyed after the CUDA runtime at exit.
  static auto* cache = new std::map<std::pair<c10::DeviceIndex, std::vector<double>>, at::Tensor>();
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  auto key = std::make_pair(device.index(), anchors);
  auto it = cache->find(key);
  if (it == cache->end()) it = cache->emplace(std::move(key), host.to(device)).first;
  return it->second;
}

at::Tensor decode_boxes(const RegionParts& p, const std::vector<double>& anchors) {
  const int64_t a_n = p.x.size(1), h_n = p.x.size(2), w_n = p.x.size(3);
  TORCH_CHECK(static_cast<int64_t>(anchors.size()) == 2 * a_n, "decode_boxes: ", anchors.size() / 2, " anchors for ",
              a_n, " predictions per cell");
  const auto fopt = p.x.options().dtype(at::kFloat);
  const at::Tensor gx = at::arange(w_n, fopt).view({1, 1, 1, w_n});
  const at::Tensor gy = at::arange(h_n, fopt).view({1, 1, h_n, 1});
  const at::Tensor anc = anchor_table(anchors, p.x.device()).view({a_n, 2});
  const at::Tensor aw = anc.select(1, 0).view({1, a_n, 1, 1}), ah = anc.select(1, 1).view({1, a_n, 1, 1});
  return at::stack({(p.x + gx) / w_n, (p.y + gy) / h_n, p.w.exp() * aw / w_n, p.h.exp() * ah / h_n}, -1);
}

EncodedBox encode_box(float cx, float cy, float w, float h, int64_t grid_w, int64_t grid_h,
                      const std::vector<double>& anchors) {
  const auto gw = static_cast<float>(grid_w), gh = static_cast<float>(grid_h);
  EncodedBox e;
  e.i = std::clamp<int64_t>(static_cast<int64_t>(cx * gw), 0, grid_w - 1);
  e.j = std::clamp<int64_t>(static_cast<int64_t>(cy * gh), 0, grid_h - 1);
  float best = -1;  // darknet's strict '>': the first anchor wins a tie
  for (std::size_t n = 0; 2 * n + 1 < anchors.size(); ++n) {
    const float iou =
        shape_iou(static_cast<float>(anchors[2 * n]) / gw, static_cast<float>(anchors[2 * n + 1]) / gh, w, h);
    if (iou > best) best = iou, e.anchor = static_cast<int64_t>(n);
  }
  const auto a = static_cast<std::size_t>(e.anchor);
  e.tx = cx * gw - static_cast<float>(e.i);
  e.ty = cy * gh - static_cast<float>(e.j);
  e.tw = std::log(w * gw / static_cast<float>(anchors[2 * a]));
  e.th = std::log(h * gh / static_cast<float>(anchors[2 * a + 1]));
  return e;
}

}  // namespace yolo2::ops
