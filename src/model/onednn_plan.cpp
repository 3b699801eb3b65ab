#include "yolo2/model/onednn_plan.hpp"

#include <ATen/ATen.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "yolo2/model/yolov2.hpp"

#ifdef YOLO2_HAVE_ONEDNN
#include "../compat/onednn.hpp"
#endif

namespace yolo2::model {

#ifdef YOLO2_HAVE_ONEDNN

bool onednn_available() { return true; }

std::string onednn_plan_version() {
  const dnnl_version_t* v = dnnl::version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using DType = memory::data_type;

memory::desc plain_desc(const memory::dims& dims) { return memory::desc(dims, DType::f32, Tag::nchw); }
memory::desc any_desc(const memory::dims& dims) { return memory::desc(dims, DType::f32, Tag::any); }

}  // namespace

struct OneDnnPlan::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  // Steps run in order: a oneDNN primitive with its arguments, or host work between two of them.
  struct Step {
    dnnl::primitive prim;
    std::unordered_map<int, memory> args;
    std::function<void()> host;
  };
  std::vector<Step> steps;
  memory input, output;  // user-layout ends: their data handles are set on every run
  memory::dims in_dims, out_dims;
  // Activations get their storage after the plan is built (assign_buffers): buffers are shared
  // between activations whose lifetimes do not overlap.
  std::vector<memory> activations;
  std::vector<at::Tensor> buffers;

  memory activation(const memory::desc& d) {
    activations.emplace_back(d, engine, static_cast<void*>(DNNL_MEMORY_NONE));
    return activations.back();
  }

  // A reorder from `src` into a new memory of layout `want` (or `src` itself when it already has it).
  memory reorder_to(const memory& src, const memory::desc& want) {
    if (src.get_desc() == want) return src;
    memory dst = activation(want);
    steps.push_back({dnnl::reorder(src, dst), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}}, {}});
    return dst;
  }

  memory conv(const memory& src, const FoldedConv& c) {
    const memory::dims sd = compat::dims_of(src.get_desc());
    const int64_t k = c.weight.size(2), o = c.weight.size(0);
    const memory::dims wd{o, c.weight.size(1), k, c.weight.size(3)};
    const int64_t oh = (sd[2] + 2 * c.padding - k) / c.stride + 1, ow = (sd[3] + 2 * c.padding - wd[3]) / c.stride + 1;
    const memory::dims dd{sd[0], o, oh, ow};
    const dnnl::primitive_attr attr = c.leaky ? compat::leaky_relu_attr(0.1f) : dnnl::primitive_attr();
    const auto pd = compat::convolution(engine, any_desc(sd), any_desc(wd), memory::desc({o}, DType::f32, Tag::x),
                                        any_desc(dd), c.stride, c.padding, attr);
    const memory in = reorder_to(src, pd.src_desc());

    // Weights and bias are copied (and reordered) into memory the plan owns, once.
    const at::Tensor w = c.weight.contiguous().to(at::kFloat), b = c.bias.contiguous().to(at::kFloat);
    memory user_w(memory::desc(wd, DType::f32, Tag::oihw), engine, w.data_ptr());
    memory weights(pd.weights_desc(), engine), bias(pd.bias_desc(), engine);
    dnnl::reorder(user_w, weights).execute(stream, user_w, weights);
    memory user_b(memory::desc({o}, DType::f32, Tag::x), engine, b.data_ptr());
    dnnl::reorder(user_b, bias).execute(stream, user_b, bias);
    stream.wait();

    memory dst = activation(pd.dst_desc());
    steps.push_back({dnnl::convolution_forward(pd),
                     {{DNNL_ARG_SRC, in}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}},
                     {}});
    return dst;
  }

  memory maxpool(const memory& src) {
    const memory::dims sd = compat::dims_of(src.get_desc());
    const auto pd = compat::max_pooling(engine, src.get_desc(), any_desc({sd[0], sd[1], sd[2] / 2, sd[3] / 2}), 2, 2);
    memory dst = activation(pd.dst_desc());
    steps.push_back({dnnl::pooling_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}}, {}});
    return dst;
  }

  // darknet's reorg has no oneDNN primitive: plain NCHW in and out, LibTorch in between (the one
  // 26x26x64 map of the passthrough, a negligible copy).
  memory reorg(const memory& src) {
    const memory::dims sd = compat::dims_of(src.get_desc()), od{sd[0], 4 * sd[1], sd[2] / 2, sd[3] / 2};
    const memory plain = reorder_to(src, plain_desc(sd));
    const memory dst = activation(plain_desc(od));
    // The host step's memories are listed as its arguments too, for the buffers' lifetimes.
    Step step;
    step.args.emplace(DNNL_ARG_FROM, plain);
    step.args.emplace(DNNL_ARG_TO, dst);
    step.host = [plain, dst, sd, od]() {
      const at::Tensor in = at::from_blob(plain.get_data_handle(), at::IntArrayRef(sd.data(), sd.size()), at::kFloat);
      at::from_blob(dst.get_data_handle(), at::IntArrayRef(od.data(), od.size()), at::kFloat).copy_(reorg_darknet(in));
    };
    steps.push_back(std::move(step));
    return dst;
  }

  // Gives every activation a buffer: walking the steps in order, an activation takes the smallest
  // free buffer that fits (or a new one) at its first use and frees it after its last use.
  void assign_buffers() {
    const std::size_t n = activations.size();
    std::vector<std::size_t> first(n, steps.size()), last(n, 0);
    for (std::size_t s = 0; s < steps.size(); ++s)
      for (const auto& [arg, m] : steps[s].args)
        for (std::size_t a = 0; a < n; ++a)
          if (m.get() == activations[a].get()) first[a] = std::min(first[a], s), last[a] = std::max(last[a], s);
    std::vector<std::size_t> owner(n), free_list;  // owner: buffer index of each activation
    for (std::size_t s = 0; s < steps.size(); ++s) {
      for (std::size_t a = 0; a < n; ++a) {
        if (first[a] != s) continue;
        const auto bytes = static_cast<int64_t>(activations[a].get_desc().get_size());
        auto best = free_list.end();
        for (auto it = free_list.begin(); it != free_list.end(); ++it)
          if (buffers[*it].numel() >= bytes &&
              (best == free_list.end() || buffers[*it].numel() < buffers[*best].numel()))
            best = it;
        if (best == free_list.end()) {
          owner[a] = buffers.size();
          buffers.push_back(at::empty({bytes}, at::kByte));
        } else {
          owner[a] = *best;
          free_list.erase(best);
        }
        activations[a].set_data_handle(buffers[owner[a]].data_ptr());
      }
      for (std::size_t a = 0; a < n; ++a)
        if (last[a] == s && first[a] < steps.size()) free_list.push_back(owner[a]);
    }
  }

  memory concat(const std::vector<memory>& parts) {
    std::vector<memory::desc> descs;
    for (const auto& p : parts) descs.push_back(p.get_desc());
    const auto pd = compat::concat(engine, 1, descs);
    memory dst = activation(pd.dst_desc());
    std::unordered_map<int, memory> args{{DNNL_ARG_DST, dst}};
    for (std::size_t i = 0; i < parts.size(); ++i) args.emplace(DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i), parts[i]);
    steps.push_back({dnnl::concat(pd), std::move(args), {}});
    return dst;
  }
};

OneDnnPlan::OneDnnPlan(const NetworkSpec& spec, const std::vector<int>& conv_of_layer,
                       const std::vector<FoldedConv>& convs, int64_t batch, int64_t height, int64_t width)
    : impl_(std::make_unique<Impl>()) {
  Impl& p = *impl_;
  p.in_dims = {batch, spec.channels, height, width};
  p.input = memory(plain_desc(p.in_dims), p.engine, DNNL_MEMORY_NONE);
  memory x = p.input;
  std::vector<memory> saved(spec.layers.size());
  for (std::size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec& l = spec.layers[i];
    try {
      switch (l.type) {
        case LayerSpec::Type::Conv:
          x = p.conv(x, convs.at(static_cast<std::size_t>(conv_of_layer.at(i))));
          break;
        case LayerSpec::Type::MaxPool:
          x = p.maxpool(x);
          break;
        case LayerSpec::Type::Reorg:
          x = p.reorg(x);
          break;
        case LayerSpec::Type::AvgPool:
          throw std::runtime_error("oneDNN plan: the average pool of a classifier is not planned");
        case LayerSpec::Type::Route: {
          std::vector<memory> parts;
          for (int j : l.inputs) parts.push_back(saved.at(static_cast<std::size_t>(j)));
          x = parts.size() == 1 ? parts[0] : p.concat(parts);
          break;
        }
      }
    } catch (const dnnl::error& e) {
      throw std::runtime_error("oneDNN plan: layer " + std::to_string(i) + " at input " + std::to_string(height) + "x" +
                               std::to_string(width) + ", batch " + std::to_string(batch) + ": " + e.what());
    }
    saved[i] = x;
  }
  p.out_dims = compat::dims_of(x.get_desc());
  p.output = memory(plain_desc(p.out_dims), p.engine, DNNL_MEMORY_NONE);
  p.steps.push_back({dnnl::reorder(x, p.output), {{DNNL_ARG_FROM, x}, {DNNL_ARG_TO, p.output}}, {}});
  p.assign_buffers();
}

OneDnnPlan::~OneDnnPlan() = default;

at::Tensor OneDnnPlan::run(const at::Tensor& x) {
  Impl& p = *impl_;
  if (!x.device().is_cpu() || x.scalar_type() != at::kFloat || x.sizes() != at::IntArrayRef(p.in_dims))
    throw std::invalid_argument("oneDNN plan: input must be a float CPU tensor of the plan's shape");
  const at::Tensor in = x.contiguous();
  at::Tensor out = at::empty(at::IntArrayRef(p.out_dims), at::kFloat);
  p.input.set_data_handle(in.data_ptr());
  p.output.set_data_handle(out.data_ptr());
  for (auto& s : p.steps) {
    if (s.host) {
      p.stream.wait();
      s.host();
    } else {
      s.prim.execute(p.stream, s.args);
    }
  }
  p.stream.wait();
  return out;
}

#else  // no oneDNN headers at build time

bool onednn_available() { return false; }
std::string onednn_plan_version() { return ""; }

struct OneDnnPlan::Impl {};

OneDnnPlan::OneDnnPlan(const NetworkSpec&, const std::vector<int>&, const std::vector<FoldedConv>&, int64_t, int64_t,
                       int64_t) {
  throw std::runtime_error("oneDNN plan: this build has no oneDNN (install libdnnl-dev and rebuild)");
}
OneDnnPlan::~OneDnnPlan() = default;
at::Tensor OneDnnPlan::run(const at::Tensor&) { throw std::runtime_error("oneDNN plan: not built"); }

#endif

}  // namespace yolo2::model
