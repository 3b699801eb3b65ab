#include "yolo2/io/darknet.hpp"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "yolo2/error.hpp"
#include "yolo2/model/layers.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::io {

using model::Head;
using model::infer_shapes;
using model::LayerInfo;
using model::LayerSpec;

namespace {

// The tensors of one convolution in darknet's file order.
std::vector<at::Tensor> conv_tensors(YoloV2Impl& model, std::size_t k) {
  auto& conv = model.convs()[k];
  auto& bn = model.norms()[k];
  if (bn.is_empty()) return {conv->bias, conv->weight};
  return {bn->bias, bn->weight, bn->running_mean, bn->running_var, conv->weight};
}

int64_t conv_floats(const LayerSpec& l, int in_channels) {
  const int64_t n = l.filters;
  return n * (l.batch_normalize ? 4 : 1) + n * in_channels * l.size * l.size;
}

// Input channels of every layer (the shape pass's).
std::vector<int> in_channels(const NetworkSpec& spec) {
  std::vector<int> in;
  for (const LayerInfo& r : infer_shapes(spec, 0, 0)) in.push_back(r.in_c);
  return in;
}

std::string describe(const LayerSpec& l, std::size_t i, int in_c) {
  std::ostringstream os;
  os << "layer " << i << " (conv " << l.filters << " " << l.size << "x" << l.size << ", " << in_c << " input channels"
     << (l.batch_normalize ? ", batch norm" : "") << ")";
  return os.str();
}

}  // namespace

int64_t darknet_weight_floats(const NetworkSpec& spec, int upto) {
  const std::vector<int> in = in_channels(spec);
  const std::size_t n =
      upto < 0 ? spec.layers.size() : std::min<std::size_t>(spec.layers.size(), static_cast<std::size_t>(upto));
  int64_t total = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (spec.layers[i].type == LayerSpec::Type::Conv) total += conv_floats(spec.layers[i], in[i]);
  return total;
}

WeightsLoad load_darknet_weights(YoloV2Impl& model, const std::string& path, bool allow_prefix) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open darknet weights file");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const NetworkSpec& spec = model.spec();
  const std::vector<int> in_c = in_channels(spec);
  std::vector<WeightsConv> convs;
  for (std::size_t i = 0; i < spec.layers.size(); ++i)
    if (spec.layers[i].type == LayerSpec::Type::Conv)
      convs.push_back({i, conv_floats(spec.layers[i], in_c[i]), describe(spec.layers[i], i, in_c[i])});
  // The whole file is checked (header, size, finite floats) before any tensor is written.
  const WeightsLayout layout = check_darknet_weights(bytes, path, convs, allow_prefix);
  WeightsLoad r;
  r.header = layout.header;
  r.conv_layers_total = layout.conv_layers_total;
  r.floats_read = layout.floats_read;
  const float* data = reinterpret_cast<const float*>(bytes.data() + layout.header_bytes);
  torch::NoGradGuard no_grad;
  for (const WeightsStep& s : layout.steps) {
    const auto k = static_cast<std::size_t>(model.conv_of_layer()[s.layer]);
    int64_t pos = s.offset;
    for (at::Tensor t : conv_tensors(model, k)) {
      t.copy_(at::from_blob(const_cast<float*>(data + pos), t.sizes(), at::kFloat));
      pos += t.numel();
    }
    ++r.conv_layers_loaded;
  }
  return r;
}

namespace {

// The .weights content of the first `upto` layers (all when < 0), as a producer for an atomic write.
std::function<void(const util::ByteSink&)> weights_content(YoloV2Impl& model, uint64_t seen, int upto) {
  const NetworkSpec& spec = model.spec();
  const std::size_t n =
      upto < 0 ? spec.layers.size() : std::min<std::size_t>(spec.layers.size(), static_cast<std::size_t>(upto));
  return [&model, seen, n](const util::ByteSink& sink) {
    const int32_t version[3] = {0, 2, 0};
    sink(version, sizeof(version));
    sink(&seen, sizeof(seen));
    for (std::size_t i = 0; i < n; ++i) {
      const int k = model.conv_of_layer()[i];
      if (k < 0) continue;
      for (const at::Tensor& t : conv_tensors(model, static_cast<std::size_t>(k))) {
        const at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
        sink(c.data_ptr<float>(), static_cast<std::size_t>(c.numel()) * sizeof(float));
      }
    }
  };
}

}  // namespace

void save_darknet_weights(YoloV2Impl& model, const std::string& path, uint64_t seen, int upto) {
  util::write_file_atomic(path, weights_content(model, seen, upto));
}

namespace {

// [net]: the input and darknet's training recipe.
void write_net_section(std::ostream& os, const NetworkSpec& spec, const Config& config) {
  const auto& t = config.train;
  const auto& a = config.data.augment;
  const bool classifier = spec.head == Head::Classifier;
  // A classifier with a fine-tune stage ends trained at its size (darknet19_448.cfg).
  const int size = classifier ? classifier_input_size(config, 0) : config.data.input_size;
  os << (classifier ? "# Written by yolo2 (Darknet19 classifier, darknet19.cfg layout).\n[net]\n"
                    : "# Written by yolo2 (YOLOv2, darknet yolov2-voc layout).\n[net]\n")
     << "batch=" << t.batch << "\nsubdivisions=" << t.subdivisions << "\n"
     << "width=" << size << "\nheight=" << size << "\nchannels="
     << spec.channels
     // AlexeyAB darknet and OpenCV's DNN read it: the network was evaluated on letterboxed inputs.
     << (!classifier && config.data.eval_transform == EvalTransform::Letterbox ? "\nletter_box=1" : "")
     << "\nmomentum=" << t.momentum << "\ndecay=" << t.decay << "\nangle=0\n"
     << "saturation=" << a.saturation << "\nexposure=" << a.exposure << "\nhue=" << a.hue << "\n\n"
     << "learning_rate=" << t.lr << "\nburn_in=" << t.burn_in << "\nmax_batches=" << t.max_batches << "\npolicy="
     << (t.policy == LrPolicy::Constant ? "constant"
         : t.policy == LrPolicy::Poly   ? "poly"
                                        : "steps");
  if (t.policy == LrPolicy::Poly) os << "\npower=" << t.power;
  if (t.policy == LrPolicy::Steps || t.policy == LrPolicy::Cosine) {
    os << "\nsteps=";
    for (std::size_t i = 0; i < t.steps.size(); ++i) os << (i ? "," : "") << t.steps[i];
    os << "\nscales=";
    for (std::size_t i = 0; i < t.scales.size(); ++i) os << (i ? "," : "") << t.scales[i];
  }
  os << "\n";
}

// [region]: the anchors and darknet's loss settings.
void write_region_section(std::ostream& os, const NetworkSpec& spec, const Config& config) {
  const auto& L = config.loss;
  os << "\n[region]\nanchors=";
  for (std::size_t i = 0; i < spec.anchors.size(); ++i) os << (i ? ", " : "") << spec.anchors[i];
  os << "\nbias_match=1\nclasses=" << spec.num_classes << "\ncoords=4\nnum=" << spec.num_anchors()
     << "\nsoftmax=1\njitter=" << config.data.augment.jitter << "\nrescore=" << (L.rescore ? 1 : 0)
     << "\n\nobject_scale=" << L.object_scale << "\nnoobject_scale=" << L.noobject_scale
     << "\nclass_scale=" << L.class_scale << "\ncoord_scale=" << L.coord_scale << "\n\nabsolute=1\nthresh=" << L.thresh
     << "\nrandom=" << (config.data.multiscale_sizes.empty() ? 0 : 1) << "\n";
}

}  // namespace

std::string darknet_cfg(const NetworkSpec& spec, const Config& config) {
  std::ostringstream os;
  write_net_section(os, spec, config);
  for (std::size_t i = 0; i < spec.layers.size(); ++i) {
    const model::LayerKind& kind = model::layer_kind(spec.layers[i].type);
    os << "\n[" << kind.section << "]\n";
    kind.cfg_keys(os, spec.layers[i], static_cast<int>(i));
  }
  if (spec.head == Head::Classifier)
    os << "\n[softmax]\ngroups=1\n";  // darknet19.cfg ends so (its [cost] layer is not needed to predict)
  else
    write_region_section(os, spec, config);
  return os.str();
}

void export_darknet(YoloV2Impl& model, const Config& config, const std::string& prefix, uint64_t seen) {
  const std::string cfg = darknet_cfg(model.spec(), config);
  // Both files, or neither: an earlier export's pair is never left half replaced.
  util::write_files_atomic({{prefix + ".cfg", [&cfg](const util::ByteSink& sink) { sink(cfg.data(), cfg.size()); }},
                            {prefix + ".weights", weights_content(model, seen, -1)}});
}

}  // namespace yolo2::io
