// The ONNX model of a network (onnx_graph.hpp), written with ONNX's own protobuf classes.
//
// Opset 11: the oldest opset that has every operator the graph needs in its current form (Slice with
// tensor inputs since 10, NonMaxSuppression since 10, Resize-free), and the one that the deployment
// tools list as their floor: ONNX Runtime, TensorRT 7+, OpenVINO, OpenCV's DNN reader (4.x), onnx2tf
// and the CoreML converters all read it, where a newer opset would lock out older TensorRT and
// OpenCV releases without buying anything for this network (Softmax over the last axis, Unsqueeze
// with an attribute and Split are the same computation in 11 and 13).
//
// The input size is fixed at export and the batch axis is dynamic ("batch"): every Reshape takes a
// constant shape with -1 for the batch, no Shape op, which OpenCV 4.6's reader needs.
#include "yolo2/interop/onnx_graph.hpp"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <stdexcept>

namespace yolo2::interop {
namespace {

class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto& g) : g_(g) {}

  onnx::NodeProto& node(const std::string& op, std::vector<std::string> inputs, const std::string& output) {
    onnx::NodeProto& n = *g_.add_node();
    n.set_op_type(op);
    n.set_name(output + "/" + op);
    for (auto& in : inputs) n.add_input(std::move(in));
    n.add_output(output);
    return n;
  }
  std::string initializer(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& v) {
    onnx::TensorProto& t = *g_.add_initializer();
    t.set_name(name);
    t.set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t.add_dims(d);
    t.set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
    return name;
  }
  std::string int64s(const std::string& name, const std::vector<int64_t>& v) {
    onnx::TensorProto& t = *g_.add_initializer();
    t.set_name(name);
    t.set_data_type(onnx::TensorProto::INT64);
    t.add_dims(static_cast<int64_t>(v.size()));
    for (int64_t x : v) t.add_int64_data(x);
    return name;
  }
  std::string name(const std::string& base) { return base + "_" + std::to_string(counter_++); }

 private:
  onnx::GraphProto& g_;
  int counter_ = 0;
};

void attr_ints(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v) {
  onnx::AttributeProto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a.add_ints(x);
}
void attr_int(onnx::NodeProto& n, const std::string& name, int64_t v) {
  onnx::AttributeProto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(v);
}
void attr_float(onnx::NodeProto& n, const std::string& name, float v) {
  onnx::AttributeProto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::FLOAT);
  a.set_f(v);
}

void value_info(onnx::ValueInfoProto& v, const std::string& name, int elem_type, const std::vector<int64_t>& dims,
                const std::string& dynamic_first) {
  v.set_name(name);
  auto* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(elem_type);
  auto* shape = t->mutable_shape();
  for (std::size_t i = 0; i < dims.size(); ++i) {
    auto* d = shape->add_dim();
    if (i == 0 && !dynamic_first.empty())
      d->set_dim_param(dynamic_first);
    else
      d->set_dim_value(dims[i]);
  }
}

// A convolution (with its kept batch norm) and its activation; returns the output's name.
std::string add_conv(GraphBuilder& b, const std::string& in, const OnnxConv& c, const std::string& out,
                     const std::string& prefix) {
  std::vector<std::string> inputs{in, b.initializer(prefix + ".weight", {c.out, c.in, c.size, c.size}, c.weight)};
  if (!c.bias.empty()) inputs.push_back(b.initializer(prefix + ".bias", {c.out}, c.bias));
  const bool norm = !c.bn_scale.empty();
  std::string y = (norm || c.leaky) ? b.name(prefix + ".conv") : out;
  onnx::NodeProto& conv = b.node("Conv", inputs, y);
  attr_ints(conv, "kernel_shape", {c.size, c.size});
  attr_ints(conv, "strides", {c.stride, c.stride});
  attr_ints(conv, "pads", {c.pad, c.pad, c.pad, c.pad});
  if (norm) {
    const std::string z = c.leaky ? b.name(prefix + ".bn") : out;
    onnx::NodeProto& bn = b.node(
        "BatchNormalization",
        {y, b.initializer(prefix + ".bn.scale", {c.out}, c.bn_scale),
         b.initializer(prefix + ".bn.bias", {c.out}, c.bn_bias), b.initializer(prefix + ".bn.mean", {c.out}, c.bn_mean),
         b.initializer(prefix + ".bn.var", {c.out}, c.bn_var)},
        z);
    attr_float(bn, "epsilon", c.bn_eps);
    y = z;
  }
  if (c.leaky) attr_float(b.node("LeakyRelu", {y}, out), "alpha", 0.1f);
  return out;
}

// darknet's reorg (yolov2-reference.md §1.5) as model::reorg_darknet computes it: x [B, C, H, W]
// reshaped to [B, C/4, H, 2, W, 2], permuted (0, 3, 5, 1, 2, 4), reshaped to [B, 4C, H/2, W/2].
std::string add_reorg(GraphBuilder& b, const std::string& in, const OnnxLayer& l, const std::string& out,
                      const std::string& prefix) {
  const int64_t c = l.in_c, h = l.in_h, w = l.in_w;
  const std::string r1 = b.name(prefix + ".split");
  b.node("Reshape", {in, b.int64s(prefix + ".shape6", {-1, c / 4, h, 2, w, 2})}, r1);
  const std::string t = b.name(prefix + ".permute");
  attr_ints(b.node("Transpose", {r1}, t), "perm", {0, 3, 5, 1, 2, 4});
  b.node("Reshape", {t, b.int64s(prefix + ".shape4", {-1, 4 * c, h / 2, w / 2})}, out);
  return out;
}

std::string add_layer(GraphBuilder& b, const OnnxNetwork& net, std::size_t i, const std::string& in,
                      const std::string& out) {
  const OnnxLayer& l = net.layers[i];
  const std::string prefix = "layer" + std::to_string(i);
  switch (l.type) {
    case OnnxLayer::Type::Conv:
      return add_conv(b, in, l.conv, out, prefix);
    case OnnxLayer::Type::MaxPool: {
      onnx::NodeProto& n = b.node("MaxPool", {in}, out);
      attr_ints(n, "kernel_shape", {2, 2});
      attr_ints(n, "strides", {2, 2});
      return out;
    }
    case OnnxLayer::Type::AvgPool:
      b.node("GlobalAveragePool", {in}, out);
      return out;
    case OnnxLayer::Type::Reorg:
      return add_reorg(b, in, l, out, prefix);
    case OnnxLayer::Type::Route: {
      std::vector<std::string> ins;
      for (int k : l.inputs) ins.push_back("layer" + std::to_string(k));
      if (ins.size() == 1) {
        b.node("Identity", ins, out);
      } else {
        attr_int(b.node("Concat", ins, out), "axis", 1);
      }
      return out;
    }
  }
  throw std::logic_error("onnx: unknown layer type");
}

// The region decode on the raw output [B, A*(5+C), H, W]: boxes [B, N, 4] (x1, y1, x2, y2 in input
// pixels, clipped to `window` [B, 4], the input's image area) and scores [B, N, C] = sigmoid(t_o) x
// softmax(class logits); N = H*W*A ordered (y*W + x)*A + a, as eval::decode_region.
void add_decode(GraphBuilder& b, onnx::GraphProto& g, const OnnxNetwork& net, const std::string& raw) {
  const OnnxDecode& d = *net.decode;
  const OnnxLayer& last = net.layers.back();
  const int64_t a = static_cast<int64_t>(d.anchors.size() / 2), e = 5 + d.num_classes;
  const int64_t gh = last.out_h, gw = last.out_w, n = gh * gw * a;
  const float sx = static_cast<float>(net.width) / static_cast<float>(gw);
  const float sy = static_cast<float>(net.height) / static_cast<float>(gh);
  b.node("Reshape", {raw, b.int64s("decode.shape5", {-1, a, e, gh * gw})}, "decode.r1");
  attr_ints(b.node("Transpose", {"decode.r1"}, "decode.t"), "perm", {0, 3, 1, 2});
  b.node("Reshape", {"decode.t", b.int64s("decode.shape3", {-1, n, e})}, "decode.pred");
  const auto slice = [&](const std::string& out, int64_t from, int64_t to) {
    b.node(
        "Slice",
        {"decode.pred", b.int64s(out + ".starts", {from}), b.int64s(out + ".ends", {to}), b.int64s(out + ".axes", {2})},
        out);
  };
  slice("decode.txy", 0, 2), slice("decode.twh", 2, 4), slice("decode.to", 4, 5), slice("decode.logits", 5, e);
  // Cell offsets and anchors in input pixels, per prediction.
  std::vector<float> grid, anchor;
  for (int64_t y = 0; y < gh; ++y)
    for (int64_t x = 0; x < gw; ++x)
      for (int64_t k = 0; k < a; ++k) {
        grid.insert(grid.end(), {static_cast<float>(x), static_cast<float>(y)});
        anchor.insert(anchor.end(), {static_cast<float>(d.anchors[2 * static_cast<std::size_t>(k)]) * sx,
                                     static_cast<float>(d.anchors[2 * static_cast<std::size_t>(k) + 1]) * sy});
      }
  b.node("Sigmoid", {"decode.txy"}, "decode.sxy");
  b.node("Add", {"decode.sxy", b.initializer("decode.grid", {1, n, 2}, grid)}, "decode.cell");
  b.node("Mul", {"decode.cell", b.initializer("decode.stride", {2}, {sx, sy})}, "decode.cxy");
  b.node("Exp", {"decode.twh"}, "decode.ewh");
  b.node("Mul", {"decode.ewh", b.initializer("decode.anchors", {1, n, 2}, anchor)}, "decode.wh");
  b.node("Mul", {"decode.wh", b.initializer("decode.half", {1}, {0.5f})}, "decode.half_wh");
  b.node("Sub", {"decode.cxy", "decode.half_wh"}, "decode.p1");
  b.node("Add", {"decode.cxy", "decode.half_wh"}, "decode.p2");
  attr_int(b.node("Concat", {"decode.p1", "decode.p2"}, "decode.corners"), "axis", 2);
  // The image's area of the input: lo = (x1, y1, x1, y1), hi = (x2, y2, x2, y2) of `window`.
  attr_int(b.node("Gather", {"window", b.int64s("decode.lo_idx", {0, 1, 0, 1})}, "decode.lo2"), "axis", 1);
  attr_int(b.node("Gather", {"window", b.int64s("decode.hi_idx", {2, 3, 2, 3})}, "decode.hi2"), "axis", 1);
  attr_ints(b.node("Unsqueeze", {"decode.lo2"}, "decode.lo"), "axes", {1});
  attr_ints(b.node("Unsqueeze", {"decode.hi2"}, "decode.hi"), "axes", {1});
  b.node("Min", {"decode.corners", "decode.hi"}, "decode.upper");
  b.node("Max", {"decode.upper", "decode.lo"}, "boxes");
  b.node("Sigmoid", {"decode.to"}, "decode.objectness");
  attr_int(b.node("Softmax", {"decode.logits"}, "decode.class_probs"), "axis", 2);
  b.node("Mul", {"decode.objectness", "decode.class_probs"}, "scores");
  value_info(*g.add_input(), "window", onnx::TensorProto::FLOAT, {0, 4}, "batch");
  value_info(*g.add_output(), "boxes", onnx::TensorProto::FLOAT, {0, n, 4}, "batch");
  value_info(*g.add_output(), "scores", onnx::TensorProto::FLOAT, {0, n, d.num_classes}, "batch");
  if (!d.nms) return;
  attr_ints(b.node("Transpose", {"scores"}, "decode.scores_cn"), "perm", {0, 2, 1});
  onnx::NodeProto& nms = b.node("NonMaxSuppression",
                                {"boxes", "decode.scores_cn", b.int64s("nms.max_per_class", {n}),
                                 b.initializer("nms.iou_threshold", {1}, {d.iou_threshold}),
                                 b.initializer("nms.score_threshold", {1}, {d.score_threshold})},
                                "selected_indices");
  attr_int(nms, "center_point_box", 0);
  value_info(*g.add_output(), "selected_indices", onnx::TensorProto::INT64, {0, 3}, "selected");
}

std::string dims_text(const onnx::ValueInfoProto& v) {
  std::string s;
  for (const auto& d : v.type().tensor_type().shape().dim())
    s += (s.empty() ? "" : ", ") + (d.has_dim_param() ? d.dim_param() : std::to_string(d.dim_value()));
  return v.name() + " [" + s + "]";
}

}  // namespace

OnnxResult build_onnx(const OnnxNetwork& net) {
  if (net.layers.empty()) throw std::runtime_error("onnx: the network has no layers");
  onnx::ModelProto model;
  model.set_ir_version(onnx::IR_VERSION_2019_9_19);  // IR 6, ONNX 1.6's (the release of opset 11)
  model.set_producer_name("yolo2");
  model.set_producer_version(net.producer_version);
  onnx::OperatorSetIdProto& opset = *model.add_opset_import();
  opset.set_domain("");
  opset.set_version(kOnnxOpset);
  for (const auto& [k, v] : net.metadata) {
    onnx::StringStringEntryProto& e = *model.add_metadata_props();
    e.set_key(k);
    e.set_value(v);
  }
  onnx::GraphProto& g = *model.mutable_graph();
  g.set_name(net.graph_name);
  value_info(*g.add_input(), "images", onnx::TensorProto::FLOAT, {0, net.channels, net.height, net.width}, "batch");
  GraphBuilder b(g);
  std::string x = "images";
  const std::size_t last = net.layers.size() - 1;
  const std::string raw = net.decode ? "raw" : "output";
  for (std::size_t i = 0; i < net.layers.size(); ++i) {
    const OnnxLayer& l = net.layers[i];
    // Routes read named layer outputs; every other layer reads the previous layer's.
    x = add_layer(b, net, i, x, i == last ? raw : "layer" + std::to_string(i));
    if (i == last && !net.decode)
      value_info(*g.add_output(), raw, onnx::TensorProto::FLOAT, {0, l.out_c, l.out_h, l.out_w}, "batch");
  }
  // A route to the last layer's output reads "layerN": the last layer is named `raw`/`output` instead.
  for (const auto& l : net.layers)
    for (int k : l.inputs)
      if (static_cast<std::size_t>(k) == last) throw std::runtime_error("onnx: a route reads the network's output");
  if (net.decode) add_decode(b, g, net, raw);
  try {
    onnx::checker::check_model(model);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict=*/1));
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("onnx: the ONNX checker refused the model: ") + e.what());
  }
  OnnxResult r;
  r.nodes = model.graph().node_size();
  for (const auto& o : model.graph().output()) r.outputs.push_back(dims_text(o));
  if (!model.SerializeToString(&r.bytes)) throw std::runtime_error("onnx: cannot serialize the model");
  return r;
}

}  // namespace yolo2::interop
