#include "yolo2/model/layers.hpp"

#include <ATen/ATen.h>

#include <array>
#include <string>

#include "yolo2/error.hpp"

namespace yolo2::model {

namespace {

void conv_shape(const LayerSpec& l, const std::vector<LayerInfo>&, LayerInfo& r) {
  r.filters = l.filters, r.size = l.size, r.stride = l.stride;
  r.out_c = l.filters, r.out_h = r.in_h / l.stride, r.out_w = r.in_w / l.stride;
  r.bflops = 2.0 * l.filters * l.size * l.size * r.in_c * r.out_h * r.out_w / 1e9;
}

void conv_cfg(std::ostream& os, const LayerSpec& l, int) {
  if (l.batch_normalize) os << "batch_normalize=1\n";
  os << "filters=" << l.filters << "\nsize=" << l.size << "\nstride=" << l.stride
     << "\npad=1\nactivation=" << (l.leaky ? "leaky" : "linear") << "\n";
}

void maxpool_shape(const LayerSpec& l, const std::vector<LayerInfo>&, LayerInfo& r) {
  r.size = l.size, r.stride = l.stride;
  r.out_c = r.in_c, r.out_h = r.in_h / 2, r.out_w = r.in_w / 2;
}

at::Tensor maxpool_run(const LayerSpec&, const at::Tensor& x, const std::vector<at::Tensor>&) {
  return at::max_pool2d(x, {2, 2}, {2, 2});
}

void maxpool_cfg(std::ostream& os, const LayerSpec& l, int) {
  os << "size=" << l.size << "\nstride=" << l.stride << "\n";
}

void avgpool_shape(const LayerSpec&, const std::vector<LayerInfo>&, LayerInfo& r) {
  r.out_c = r.in_c, r.out_h = 1, r.out_w = 1;
}

at::Tensor avgpool_run(const LayerSpec&, const at::Tensor& x, const std::vector<at::Tensor>&) {
  return at::mean(x, {2, 3}, /*keepdim=*/true);
}

void no_keys(std::ostream&, const LayerSpec&, int) {}

void reorg_shape(const LayerSpec& l, const std::vector<LayerInfo>&, LayerInfo& r) {
  r.stride = l.stride;
  r.out_c = r.in_c * 4, r.out_h = r.in_h / 2, r.out_w = r.in_w / 2;
}

at::Tensor reorg_run(const LayerSpec&, const at::Tensor& x, const std::vector<at::Tensor>&) { return reorg_darknet(x); }

void reorg_cfg(std::ostream& os, const LayerSpec& l, int) { os << "stride=" << l.stride << "\n"; }

// The concatenation of earlier layers' outputs along the channels (their spatial size must agree).
void route_shape(const LayerSpec& l, const std::vector<LayerInfo>& rows, LayerInfo& r) {
  const int i = r.index;
  r.inputs = l.inputs;
  if (l.inputs.empty()) throw Error("route layer " + std::to_string(i) + " has no input");
  for (int j : l.inputs)
    if (j < 0 || j >= i) throw Error("route layer " + std::to_string(i) + " refers to layer " + std::to_string(j));
  const LayerInfo& first = rows.at(static_cast<std::size_t>(l.inputs.front()));
  r.out_c = 0, r.out_h = first.out_h, r.out_w = first.out_w;
  for (int j : l.inputs) r.out_c += rows.at(static_cast<std::size_t>(j)).out_c;
  r.in_c = r.out_c, r.in_h = r.out_h, r.in_w = r.out_w;
}

at::Tensor route_run(const LayerSpec& l, const at::Tensor&, const std::vector<at::Tensor>& saved) {
  std::vector<at::Tensor> parts;
  for (int j : l.inputs) parts.push_back(saved[static_cast<std::size_t>(j)]);
  return parts.size() == 1 ? parts[0] : at::cat(parts, 1);
}

void route_cfg(std::ostream& os, const LayerSpec& l, int index) {
  os << "layers=";
  for (std::size_t j = 0; j < l.inputs.size(); ++j)
    os << (j ? "," : "") << (l.inputs[j] - index);  // relative, as darknet writes it
  os << "\n";
}

using T = LayerSpec::Type;
const std::array<LayerKind, 5> kKinds{{
    {T::Conv, "conv", "convolutional", conv_shape, nullptr, conv_cfg, true},
    {T::MaxPool, "max", "maxpool", maxpool_shape, maxpool_run, maxpool_cfg, true},
    {T::Route, "route", "route", route_shape, route_run, route_cfg, true},
    {T::Reorg, "reorg", "reorg", reorg_shape, reorg_run, reorg_cfg, true},
    {T::AvgPool, "avg", "avgpool", avgpool_shape, avgpool_run, no_keys, false},
}};

}  // namespace

const LayerKind& layer_kind(LayerSpec::Type type) {
  for (const LayerKind& k : kKinds)
    if (k.type == type) return k;
  throw Error("internal error: a layer type without a row in model/layers.cpp");
}

bool planned_by_onednn(const NetworkSpec& spec) {
  for (const LayerSpec& l : spec.layers)
    if (!layer_kind(l.type).planned) return false;
  return true;
}

}  // namespace yolo2::model
