// The YOLOv2 network of darknet's yolov2-voc.cfg (yolov2-reference.md §1.3-§1.6): Darknet19's first
// 23 layers, two 3x3/1024 convs, the passthrough (route to the 26x26x512 layer, 1x1/64 conv,
// darknet's reorg, concat), a 3x3/1024 conv and the final linear 1x1 conv to anchors*(5+classes).
// The network is data: a list of darknet layers (NetworkSpec) from which the module, the darknet
// .cfg export, the .weights layout and the FLOPs table are all derived.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "yolo2/model/choices.hpp"
#include "yolo2/model/onednn_plan.hpp"

namespace yolo2::model {

struct LayerSpec {
  // AvgPool: darknet's [avgpool], a global average over each channel ([B, C, H, W] -> [B, C, 1, 1]).
  enum class Type { Conv, MaxPool, Route, Reorg, AvgPool };
  Type type = Type::Conv;
  // Conv
  int filters = 0, size = 1, stride = 1;
  bool batch_normalize = true;
  bool leaky = true;  // leaky ReLU 0.1, else linear
  // MaxPool: size/stride 2. Reorg: stride 2.
  // Route: absolute indices of the concatenated layers.
  std::vector<int> inputs;
};

struct NetworkSpec {
  Head head = Head::Region;  // classifier: ends in a global average pool; the outputs are class logits
  int channels = 3;
  int num_classes = 20;
  std::vector<double> anchors;  // w,h pairs in grid cells
  double bn_momentum = 0.01;
  double objectness_prior = 0;  // see ModelOptions
  std::vector<LayerSpec> layers;
  int num_anchors() const { return static_cast<int>(anchors.size() / 2); }
  int outputs_per_anchor() const { return 5 + num_classes; }
};

// Darknet19's first 23 layers (darknet19_448.conv.23), channels scaled by `width`.
std::vector<LayerSpec> darknet19_backbone(double width);
// The full yolov2-voc network for a config (model.width, model.anchors, data.classes).
NetworkSpec yolov2_spec(const ModelOptions& model, int num_classes);
// The Darknet19 classifier of darknet19.cfg / darknet19_448.cfg: the 23 backbone layers, a 1x1
// linear convolution (with bias, no batch norm) to the classes and a global average pool; darknet's
// final [softmax] is applied by the loss and the predictions (its .cfg export writes it).
NetworkSpec darknet19_classifier_spec(const ModelOptions& model, int num_classes);
// The network model.head names.
NetworkSpec network_spec(const ModelOptions& model, int num_classes);
// Channels of a scaled layer: round(filters * width), at least 8.
int scaled_channels(int filters, double width);

// The network's one shape pass (darknet's parser works out each layer's out_c/h/w once, so does
// this): per layer its input and output shapes and FLOPs at an input size, darknet-style. The
// module, darknet weights I/O and `yolo2 info` / the bench's FLOPs all read their channels here, so
// a new layer type states its shape rule in this one function. A height and width of 0 give the
// channels alone. Throws yolo2::Error for a route that refers to itself or a later layer.
struct LayerInfo {
  int index = 0;
  std::string type;  // conv, max, route, reorg
  int filters = 0, size = 0, stride = 0;
  int in_c = 0, in_h = 0, in_w = 0, out_c = 0, out_h = 0, out_w = 0;
  double bflops = 0;  // darknet's 2 * n * k^2 * c * out_h * out_w / 1e9 (convolutions only)
  std::vector<int> inputs;
};
std::vector<LayerInfo> infer_shapes(const NetworkSpec& spec, int height, int width);
std::string format_layer_table(const std::vector<LayerInfo>& rows);

// darknet's reorg (forward = 0, called with the input sizes): not a clean space-to-depth, see
// yolov2-reference.md §1.5. x [B, C, H, W] -> [B, 4C, H/2, W/2].
at::Tensor reorg_darknet(const at::Tensor& x);

class YoloV2Impl : public torch::nn::Module {
 public:
  explicit YoloV2Impl(NetworkSpec spec);

  // x [B, 3, H, W] (H, W multiples of 32, RGB in [0, 1]) -> raw region outputs
  // [B, A*(5+C), H/32, W/32], anchor-major as darknet's (channel a*(5+C) + e; e = tx, ty, tw, th,
  // to, class logits); for a classifier, the class logits [B, C, 1, 1].
  at::Tensor forward(const at::Tensor& x);

  const NetworkSpec& spec() const { return spec_; }
  // One entry per layer: the conv's index in convs(), or -1 for layers without weights.
  const std::vector<int>& conv_of_layer() const { return conv_of_layer_; }
  std::vector<torch::nn::Conv2d>& convs() { return convs_; }
  // Batch norm of each conv (an empty holder for the final linear conv).
  std::vector<torch::nn::BatchNorm2d>& norms() { return norms_; }

  // darknet's initialisation (PJ's YOLOv2 release, AlexeyAB): conv weights sqrt(2 / (k^2 c)) *
  // U(-1, 1), BN gamma 1, beta 0, final bias 0 (objectness biases at the prior when
  // spec.objectness_prior > 0). Uses LibTorch's global generator (seeded from runtime.seed).
  void reset_darknet();

  // Replaces the batch norms' training-mode forward (synchronized batch norm across processes);
  // evaluation mode always uses the running statistics. Empty: LibTorch's BatchNorm2d.
  using NormOverride = std::function<at::Tensor(const at::Tensor&, torch::nn::BatchNorm2dImpl&)>;
  void set_norm_override(NormOverride f) { norm_override_ = std::move(f); }

 private:
  NetworkSpec spec_;
  std::vector<int> conv_of_layer_;
  std::vector<torch::nn::Conv2d> convs_;
  std::vector<torch::nn::BatchNorm2d> norms_;
  NormOverride norm_override_;
};
TORCH_MODULE(YoloV2);

// The network with batch norm folded into the convolutions, for inference (no autograd, no BN
// kernels, in-place activations). Built from the current weights of a YoloV2. On CPU it runs a
// oneDNN plan compiled for each input shape it meets (onednn_plan.hpp; the last few shapes are
// kept); elsewhere, or with Backend::LibTorch, LibTorch's ops. Copies share the compiled plans.
class FusedYoloV2 {
 public:
  enum class Backend { Auto, LibTorch };
  explicit FusedYoloV2(YoloV2Impl& model);
  // Same contract as YoloV2Impl::forward; runs under inference mode. Thread-safe.
  at::Tensor forward(const at::Tensor& x) const;
  const NetworkSpec& spec() const { return spec_; }
  void set_backend(Backend b) { backend_ = b; }
  // Whether forward(x) would take the oneDNN plan.
  bool uses_onednn(const at::Tensor& x) const;
  // Puts the folded convolution weights in `format` (a copy: other FusedYoloV2 that shared them keep
  // theirs); ChannelsLast runs the LibTorch path in NHWC (on a GPU: cuDNN's NHWC kernels, as
  // training with runtime.channels_last does) and leaves out the oneDNN plan, which reads NCHW.
  void set_memory_format(at::MemoryFormat format);

 private:
  struct PlanCache;
  NetworkSpec spec_;
  std::vector<int> conv_of_layer_;
  std::vector<FoldedConv> convs_;
  Backend backend_ = Backend::Auto;
  at::MemoryFormat format_ = at::MemoryFormat::Contiguous;
  std::shared_ptr<PlanCache> plans_;
};

// Puts the convolution weights in `format` (ChannelsLast: NHWC for training with runtime.channels_last).
void set_weight_memory_format(YoloV2Impl& model, at::MemoryFormat format);

// Trainable parameter count.
int64_t parameter_count(torch::nn::Module& module);

}  // namespace yolo2::model
