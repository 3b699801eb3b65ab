#include "yolo2/model/yolov2.hpp"

#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/utils.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <iomanip>
#include <list>
#include <mutex>
#include <set>
#include <sstream>

#include "yolo2/error.hpp"
#include "yolo2/model/fold.hpp"
#include "yolo2/model/layers.hpp"

namespace yolo2::model {

namespace {

LayerSpec conv(int filters, int size, bool bn = true, bool leaky = true) {
  LayerSpec l;
  l.type = LayerSpec::Type::Conv;
  l.filters = filters;
  l.size = size;
  l.stride = 1;
  l.batch_normalize = bn;
  l.leaky = leaky;
  return l;
}

LayerSpec maxpool() {
  LayerSpec l;
  l.type = LayerSpec::Type::MaxPool;
  l.size = 2;
  l.stride = 2;
  return l;
}

LayerSpec route(std::vector<int> inputs) {
  LayerSpec l;
  l.type = LayerSpec::Type::Route;
  l.inputs = std::move(inputs);
  return l;
}

LayerSpec avgpool() {
  LayerSpec l;
  l.type = LayerSpec::Type::AvgPool;
  return l;
}

LayerSpec reorg() {
  LayerSpec l;
  l.type = LayerSpec::Type::Reorg;
  l.stride = 2;
  return l;
}

}  // namespace

int scaled_channels(int filters, double width) {
  if (width == 1.0) return filters;
  // Multiples of 8: the reorg needs channels divisible by 4, and SIMD kernels like multiples of 8.
  const int c = static_cast<int>(std::lround(filters * width / 8.0)) * 8;
  return std::max(8, c);
}

std::vector<LayerSpec> darknet19_backbone(double width) {
  auto c = [&](int filters, int size) { return conv(scaled_channels(filters, width), size); };
  return {c(32, 3),  maxpool(), c(64, 3),   maxpool(), c(128, 3),  c(64, 1),  c(128, 3), maxpool(),
          c(256, 3), c(128, 1), c(256, 3),  maxpool(), c(512, 3),  c(256, 1), c(512, 3), c(256, 1),
          c(512, 3), maxpool(), c(1024, 3), c(512, 1), c(1024, 3), c(512, 1), c(1024, 3)};
}

NetworkSpec yolov2_spec(const ModelOptions& model, int num_classes) {
  if (num_classes < 1) throw Error("the model needs at least one class");
  if (model.anchors.empty() || model.anchors.size() % 2 != 0) throw Error("model.anchors must hold (w, h) pairs");
  NetworkSpec spec;
  spec.num_classes = num_classes;
  spec.anchors = model.anchors;
  spec.bn_momentum = model.bn_momentum;
  spec.objectness_prior = model.objectness_prior;
  spec.layers = darknet19_backbone(model.width);  // layers 0-22
  const int w1024 = scaled_channels(1024, model.width);
  spec.layers.push_back(conv(w1024, 3));                                                         // 23
  spec.layers.push_back(conv(w1024, 3));                                                         // 24
  spec.layers.push_back(route({16}));                                                            // 25: route -9
  spec.layers.push_back(conv(scaled_channels(64, model.width), 1));                              // 26
  spec.layers.push_back(reorg());                                                                // 27
  spec.layers.push_back(route({27, 24}));                                                        // 28: route -1,-4
  spec.layers.push_back(conv(w1024, 3));                                                         // 29
  spec.layers.push_back(conv(spec.num_anchors() * spec.outputs_per_anchor(), 1, false, false));  // 30
  return spec;
}

NetworkSpec darknet19_classifier_spec(const ModelOptions& model, int num_classes) {
  if (num_classes < 1) throw Error("the classifier needs at least one class");
  NetworkSpec spec;
  spec.head = Head::Classifier;
  spec.num_classes = num_classes;
  spec.bn_momentum = model.bn_momentum;
  spec.layers = darknet19_backbone(model.width);              // layers 0-22
  spec.layers.push_back(conv(num_classes, 1, false, false));  // 23: [convolutional] filters=1000, linear
  spec.layers.push_back(avgpool());                           // 24: [avgpool]
  return spec;
}

NetworkSpec network_spec(const ModelOptions& model, int num_classes) {
  return model.head == Head::Classifier ? darknet19_classifier_spec(model, num_classes)
                                        : yolov2_spec(model, num_classes);
}

std::vector<LayerInfo> infer_shapes(const NetworkSpec& spec, int height, int width) {
  std::vector<LayerInfo> rows;
  int c = spec.channels, h = height, w = width;
  for (std::size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec& l = spec.layers[i];
    const LayerKind& kind = layer_kind(l.type);
    LayerInfo r;
    r.index = static_cast<int>(i);
    r.type = kind.name;
    r.in_c = c, r.in_h = h, r.in_w = w;
    kind.shape(l, rows, r);
    c = r.out_c, h = r.out_h, w = r.out_w;
    rows.push_back(r);
  }
  return rows;
}

std::string format_layer_table(const std::vector<LayerInfo>& rows) {
  std::ostringstream os;
  os << "layer     filters    size              input                output\n";
  double total = 0;
  for (const auto& r : rows) {
    os << std::setw(4) << r.index << " ";
    if (r.type == "route") {
      os << "route ";
      for (int j : r.inputs) os << " " << j;
      os << std::string(std::max<std::size_t>(1, 40 - 3 * r.inputs.size()), ' ') << "-> " << std::setw(4) << r.out_w
         << " x" << std::setw(4) << r.out_h << " x" << std::setw(5) << r.out_c << "\n";
      continue;
    }
    os << std::left << std::setw(6) << r.type << std::right;
    if (r.type == "conv")
      os << std::setw(6) << r.filters << "  " << std::setw(2) << r.size << " x" << std::setw(2) << r.size << " /"
         << std::setw(2) << r.stride;
    else if (r.type == "avg")
      os << "                    ";
    else if (r.type == "max")
      os << "        " << std::setw(2) << r.size << " x" << std::setw(2) << r.size << " /" << std::setw(2) << r.stride;
    else
      os << "              /" << std::setw(2) << r.stride;
    os << "  " << std::setw(4) << r.in_w << " x" << std::setw(4) << r.in_h << " x" << std::setw(5) << r.in_c
       << "   ->  " << std::setw(4) << r.out_w << " x" << std::setw(4) << r.out_h << " x" << std::setw(5) << r.out_c;
    if (r.type == "conv") os << "  " << std::fixed << std::setprecision(3) << r.bflops << " BFLOPs";
    os << "\n";
    total += r.bflops;
  }
  os << "total: " << std::fixed << std::setprecision(3) << total << " BFLOPs (convolutions)\n";
  return os.str();
}

at::Tensor reorg_darknet(const at::Tensor& x) {
  // darknet's reorg_cpu(forward = 0) reads the input memory as (C/4, 2H, 2W), does an
  // offset-major space-to-depth to (C, H, W) and reads that memory as (4C, H/2, W/2).
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  TORCH_CHECK(c % 4 == 0 && h % 2 == 0 && w % 2 == 0, "reorg needs C % 4 == 0 and even H, W; got ", x.sizes());
  const at::Tensor y = x.reshape({b, c / 4, h, 2, w, 2}).permute({0, 3, 5, 1, 2, 4}).reshape({b, 4 * c, h / 2, w / 2});
  // In a channels-last network the result goes back to channels-last, so that the route's cat and the
  // convolution after it keep that layout (a mixed cat returns NCHW, and each convolution would
  // convert its input, forward and backward).
  return x.suggest_memory_format() == at::MemoryFormat::ChannelsLast ? y.contiguous(at::MemoryFormat::ChannelsLast) : y;
}

YoloV2Impl::YoloV2Impl(NetworkSpec spec) : spec_(std::move(spec)) {
  const std::vector<LayerInfo> shapes = infer_shapes(spec_, 0, 0);  // the channels
  for (std::size_t i = 0; i < spec_.layers.size(); ++i) {
    const LayerSpec& l = spec_.layers[i];
    conv_of_layer_.push_back(-1);
    if (l.type != LayerSpec::Type::Conv) continue;  // no weights
    auto opts = torch::nn::Conv2dOptions(shapes[i].in_c, l.filters, l.size)
                    .stride(l.stride)
                    .padding(l.size / 2)
                    .bias(!l.batch_normalize);
    conv_of_layer_.back() = static_cast<int>(convs_.size());
    convs_.push_back(register_module("conv" + std::to_string(i), torch::nn::Conv2d(opts)));
    if (l.batch_normalize) {
      // darknet: rolling = .99 rolling + .01 batch (momentum 0.01); eps 1e-5 (its GPU path).
      norms_.push_back(register_module(
          "bn" + std::to_string(i),
          torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(l.filters).momentum(spec_.bn_momentum).eps(1e-5))));
    } else {
      norms_.push_back(torch::nn::BatchNorm2d(nullptr));
    }
  }
  reset_darknet();
}

void YoloV2Impl::reset_darknet() {
  torch::NoGradGuard no_grad;
  for (std::size_t k = 0; k < convs_.size(); ++k) {
    auto& w = convs_[k]->weight;
    const double fan_in = static_cast<double>(w.size(1) * w.size(2) * w.size(3));
    // PJ darknet's YOLOv2 release (make_convolutional_layer, 0222895c) and AlexeyAB:
    // scale * U(-1, 1), scale = sqrt(2 / (k^2 c)); PJ HEAD later switched to scale * N(0, 1).
    const double scale = std::sqrt(2.0 / fan_in);
    w.uniform_(-scale, scale);
    if (convs_[k]->bias.defined()) convs_[k]->bias.zero_();
    if (!norms_[k].is_empty()) {
      norms_[k]->weight.fill_(1.0);
      norms_[k]->bias.zero_();
      norms_[k]->running_mean.zero_();
      norms_[k]->running_var.fill_(1.0);
    }
  }
  if (spec_.head == Head::Region && spec_.objectness_prior > 0) {
    const double p = spec_.objectness_prior;
    auto& bias = convs_.back()->bias;
    for (int a = 0; a < spec_.num_anchors(); ++a)
      bias[a * spec_.outputs_per_anchor() + 4].fill_(-std::log((1 - p) / p));
  }
}

namespace {

// Which layer outputs are needed later (by a route), so the others can be dropped at once.
std::vector<bool> kept_outputs(const NetworkSpec& spec) {
  std::vector<bool> keep(spec.layers.size(), false);
  for (const auto& l : spec.layers)
    for (int j : l.inputs) keep[static_cast<std::size_t>(j)] = true;
  return keep;
}

void check_input(const at::Tensor& x, const NetworkSpec& spec) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == spec.channels, "the network expects [B, ", spec.channels,
              ", H, W] input, got ", x.sizes());
  TORCH_CHECK(x.size(2) >= 32 && x.size(3) >= 32 && x.size(2) % 32 == 0 && x.size(3) % 32 == 0,
              "input height and width must be multiples of 32, got ", x.size(2), "x", x.size(3));
}

// Runs the layer list; `conv_fn(i, x)` applies the convolution of layer i (with its norm and
// activation).
template <class ConvFn>
at::Tensor run_layers(const NetworkSpec& spec, const at::Tensor& input, ConvFn conv_fn) {
  const std::vector<bool> keep = kept_outputs(spec);
  std::vector<at::Tensor> saved(spec.layers.size());
  at::Tensor x = input;
  for (std::size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec& l = spec.layers[i];
    const LayerKind& kind = layer_kind(l.type);
    x = kind.run ? kind.run(l, x, saved) : conv_fn(i, x);
    if (keep[i]) saved[i] = x;
  }
  return x;
}

}  // namespace

at::Tensor YoloV2Impl::forward(const at::Tensor& x) {
  check_input(x, spec_);
  return run_layers(spec_, x, [this](std::size_t i, const at::Tensor& in) {
    const auto k = static_cast<std::size_t>(conv_of_layer_[i]);
    at::Tensor y = convs_[k]->forward(in);
    if (!norms_[k].is_empty())
      y = norm_override_ && norms_[k]->is_training() ? norm_override_(y, *norms_[k]) : norms_[k]->forward(y);
    // In place is safe: batch norm's backward needs its input, not its output.
    return spec_.layers[i].leaky ? (norms_[k].is_empty() ? at::leaky_relu(y, 0.1) : at::leaky_relu_(y, 0.1)) : y;
  });
}

struct FusedYoloV2::PlanCache {
  std::mutex mutex;
  // Most recently used first; a handful of shapes (evaluation, detection, multi-scale tests).
  std::list<std::pair<std::array<int64_t, 3>, std::unique_ptr<OneDnnPlan>>> plans;
  static constexpr std::size_t kMaxPlans = 4;
};

std::vector<FoldedConv> fold_batch_norms(YoloV2Impl& model) {
  torch::NoGradGuard no_grad;
  const NetworkSpec& spec = model.spec();
  std::vector<FoldedConv> out;
  for (std::size_t i = 0; i < spec.layers.size(); ++i) {
    const int k = model.conv_of_layer()[i];
    if (k < 0) continue;
    const auto ku = static_cast<std::size_t>(k);
    const auto& conv = model.convs()[ku];
    const auto& bn = model.norms()[ku];
    FoldedConv c;
    c.stride = spec.layers[i].stride;
    c.padding = spec.layers[i].size / 2;
    c.leaky = spec.layers[i].leaky;
    if (bn.is_empty()) {
      c.weight = conv->weight.detach().clone(at::MemoryFormat::Contiguous);
      c.bias = conv->bias.detach().clone();
    } else {
      // y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta, folded into one convolution.
      const at::Tensor scale = bn->weight.detach() / at::sqrt(bn->running_var.detach() + bn->options.eps());
      c.weight = (conv->weight.detach() * scale.view({-1, 1, 1, 1})).contiguous();
      c.bias = bn->bias.detach() - bn->running_mean.detach() * scale;
    }
    out.push_back(std::move(c));
  }
  return out;
}

FusedYoloV2::FusedYoloV2(YoloV2Impl& model)
    : spec_(model.spec()),
      conv_of_layer_(model.conv_of_layer()),
      convs_(fold_batch_norms(model)),
      plans_(std::make_shared<PlanCache>()) {}

bool FusedYoloV2::uses_onednn(const at::Tensor& x) const {
  // The oneDNN plan covers the layer types model/layers.cpp marks planned (not the classifier's
  // average pool).
  return backend_ == Backend::Auto && format_ == at::MemoryFormat::Contiguous && planned_by_onednn(spec_) &&
         onednn_available() && x.device().is_cpu() && x.scalar_type() == at::kFloat && x.layout() == at::kStrided;
}

void FusedYoloV2::set_memory_format(at::MemoryFormat format) {
  for (auto& c : convs_) c.weight = c.weight.contiguous(format);
  format_ = format;
  plans_ = std::make_shared<PlanCache>();
}

at::Tensor FusedYoloV2::forward(const at::Tensor& x) const {
  c10::InferenceMode guard;
  check_input(x, spec_);
  if (uses_onednn(x)) {
    const std::array<int64_t, 3> key{x.size(0), x.size(2), x.size(3)};
    std::lock_guard<std::mutex> lock(plans_->mutex);
    auto& plans = plans_->plans;
    auto it = std::find_if(plans.begin(), plans.end(), [&](const auto& p) { return p.first == key; });
    if (it == plans.end()) {
      plans.emplace_front(key, std::make_unique<OneDnnPlan>(spec_, conv_of_layer_, convs_, key[0], key[1], key[2]));
      if (plans.size() > PlanCache::kMaxPlans) plans.pop_back();
    } else if (it != plans.begin()) {
      plans.splice(plans.begin(), plans, it);
    }
    return plans.front().second->run(x);
  }
  return run_layers(spec_, x, [this](std::size_t i, const at::Tensor& in) {
    const FoldedConv& c = convs_[static_cast<std::size_t>(conv_of_layer_[i])];
    at::Tensor y = at::conv2d(in, c.weight, c.bias, {c.stride, c.stride}, {c.padding, c.padding});
    return c.leaky ? at::leaky_relu_(y, 0.1) : y;
  });
}

void set_weight_memory_format(YoloV2Impl& model, at::MemoryFormat format) {
  torch::NoGradGuard no_grad;
  for (auto& p : model.parameters())
    if (p.dim() == 4) p.set_data(p.data().contiguous(format));
}

int64_t parameter_count(torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters())
    if (p.requires_grad()) n += p.numel();
  return n;
}

}  // namespace yolo2::model
