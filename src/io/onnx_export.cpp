#include "yolo2/io/onnx_export.hpp"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <iomanip>
#include <sstream>

#include "../config_words.hpp"
#include "yolo2/error.hpp"
#include "yolo2/interop/onnx_graph.hpp"
#include "yolo2/model/fold.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::io {
namespace {

std::vector<float> floats(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
  std::vector<float> v(static_cast<std::size_t>(c.numel()));
  if (!v.empty()) std::memcpy(v.data(), c.data_ptr<float>(), v.size() * sizeof(float));
  return v;
}

// A threshold as it was given (0.45, not the float's 0.44999998807907104).
std::string short_number(float v) {
  std::ostringstream os;
  os << std::setprecision(6) << v;
  return os.str();
}

interop::OnnxLayer::Type layer_type(model::LayerSpec::Type t) {
  using L = model::LayerSpec::Type;
  using O = interop::OnnxLayer::Type;
  switch (t) {
    case L::Conv:
      return O::Conv;
    case L::MaxPool:
      return O::MaxPool;
    case L::Route:
      return O::Route;
    case L::Reorg:
      return O::Reorg;
    case L::AvgPool:
      return O::AvgPool;
  }
  throw Error("onnx export: unknown layer type");
}

// Layer i's convolution: folded (weight and bias) or as trained (weight, then the batch norm kept).
interop::OnnxConv conv_of(model::YoloV2Impl& m, const std::vector<model::FoldedConv>& folded, std::size_t i,
                          const model::LayerInfo& shape, bool fold) {
  const auto k = static_cast<std::size_t>(m.conv_of_layer()[i]);
  const model::LayerSpec& l = m.spec().layers[i];
  interop::OnnxConv c;
  c.out = shape.out_c, c.in = shape.in_c, c.size = l.size, c.stride = l.stride, c.pad = l.size / 2;
  c.leaky = l.leaky;
  const auto& bn = m.norms()[k];
  if (fold || bn.is_empty()) {
    c.weight = floats(folded[k].weight);
    c.bias = floats(folded[k].bias);
    return c;
  }
  c.weight = floats(m.convs()[k]->weight);
  c.bn_scale = floats(bn->weight), c.bn_bias = floats(bn->bias);
  c.bn_mean = floats(bn->running_mean), c.bn_var = floats(bn->running_var);
  c.bn_eps = static_cast<float>(bn->options.eps());
  return c;
}

std::vector<std::pair<std::string, std::string>> metadata(const model::NetworkSpec& spec, const Config& config,
                                                          int size, const OnnxExportOptions& o) {
  using nlohmann::json;
  const bool detector = spec.head == model::Head::Region;
  std::string outputs;
  if (!detector) {
    outputs = "output [batch, classes, 1, 1]: class logits (softmax gives the probabilities)";
  } else if (!o.decode) {
    outputs =
        "output [batch, anchors*(5+classes), size/32, size/32]: raw region outputs, anchor-major "
        "(channel a*(5+classes)+e; e = tx, ty, tw, th, to, class logits)";
  } else {
    outputs =
        "boxes [batch, N, 4]: x1, y1, x2, y2 in input pixels, clipped to the window input; scores [batch, N, "
        "classes]: sigmoid(to) x softmax(logits); N = (size/32)^2 * anchors ordered (y*W + x)*anchors + a";
    if (o.nms) outputs += "; selected_indices [K, 3]: (batch, class, box) kept by per-class NMS, unsorted";
  }
  std::vector<std::pair<std::string, std::string>> md{
      {"names", json(config.data.classes).dump()},
      {"task", detector ? "detect" : "classify"},
      {"input", json{{"name", "images"},
                     {"shape", {"batch", spec.channels, size, size}},
                     {"layout", "NCHW"},
                     {"color", "RGB"},
                     {"scale", "pixel / 255 (no mean, no std)"}}
                    .dump()},
      {"imgsz", json{size, size}.dump()},
      {"stride", "32"},
      {"outputs", outputs},
      {"yolo2_version", YOLO2_VERSION},
  };
  if (detector) {
    const bool letterbox = config.data.eval_transform == data::EvalTransform::Letterbox;
    md.emplace_back("anchors", json(spec.anchors).dump());
    md.emplace_back("anchors_unit", "grid cells (32 input pixels)");
    md.emplace_back("resize", std::string(config_word(config.data.eval_transform)) +
                                  (letterbox ? ": darknet letterbox_image, scale min(size/w, size/h), integer new "
                                               "size, centred with integer offsets, bilinear, fill 127/255"
                                             : ": stretched to size x size, bilinear"));
    md.emplace_back("score_threshold", short_number(o.score_threshold));
    md.emplace_back("iou_threshold", short_number(o.iou_threshold));
    md.emplace_back("max_detections", std::to_string(config.eval.max_detections));
    if (o.decode)
      md.emplace_back("window",
                      "input window [batch, 4]: x1, y1, x2, y2 of the image inside the input, in input "
                      "pixels, boxes are clipped to it: dx, dy, dx + (w-1)*sx, dy + (h-1)*sy with letterbox's "
                      "sx = new_w/w, sy = new_h/h; 0, 0, (w-1)*S/w, (h-1)*S/h with resize");
  }
  return md;
}

}  // namespace

OnnxExportSummary export_onnx(model::YoloV2Impl& m, const Config& config, const std::string& path,
                              const OnnxExportOptions& o) {
  const model::NetworkSpec& spec = m.spec();
  const bool detector = spec.head == model::Head::Region;
  // A classifier's default is the size it finished at (its fine-tune stage's), as the darknet export's.
  const int size = o.size > 0 ? o.size : detector ? config.data.input_size : classifier_input_size(config, 0);
  if (size % 32 != 0 || size <= 0)
    throw Error("export --size " + std::to_string(size) + ": the input size must be a positive multiple of 32");
  if (o.nms && !o.decode) throw Error("export --nms: needs --decode (NMS runs on the decoded boxes)");
  if (o.decode && !detector) throw Error("export --decode: the checkpoint is a classifier; it has no region outputs");
  const std::vector<model::LayerInfo> shapes = model::infer_shapes(spec, size, size);
  const std::vector<model::FoldedConv> folded = model::fold_batch_norms(m);
  interop::OnnxNetwork net;
  net.channels = spec.channels, net.height = size, net.width = size;
  net.producer_version = YOLO2_VERSION;
  for (std::size_t i = 0; i < spec.layers.size(); ++i) {
    const model::LayerInfo& s = shapes[i];
    interop::OnnxLayer l;
    l.type = layer_type(spec.layers[i].type);
    l.inputs = spec.layers[i].inputs;
    l.in_c = s.in_c, l.in_h = s.in_h, l.in_w = s.in_w, l.out_c = s.out_c, l.out_h = s.out_h, l.out_w = s.out_w;
    if (l.type == interop::OnnxLayer::Type::Conv) l.conv = conv_of(m, folded, i, s, o.fold_bn);
    net.layers.push_back(std::move(l));
  }
  if (o.decode) {
    interop::OnnxDecode d;
    d.anchors = spec.anchors, d.num_classes = spec.num_classes, d.nms = o.nms;
    d.score_threshold = o.score_threshold, d.iou_threshold = o.iou_threshold;
    net.decode = d;
  }
  net.metadata = metadata(spec, config, size, o);
  interop::OnnxResult r;
  try {
    r = interop::build_onnx(net);
  } catch (const std::exception& e) {
    throw Error(path + ": " + e.what());
  }
  util::write_file_atomic(path, r.bytes);
  return OnnxExportSummary{r.nodes, size, r.outputs, r.bytes.size()};
}

}  // namespace yolo2::io
