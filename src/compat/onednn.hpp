// oneDNN's C++ API across its major versions: the one place that knows how they differ.
// v2 (Debian 12's libdnnl-dev 2.6) builds a primitive from an operation descriptor
// (`convolution_forward::desc` -> `primitive_desc(desc, attr, engine)`); v3 (Debian 13, the oneDNN
// that LibTorch 2.x bundles) removed operation descriptors: primitive descriptors take the engine
// first and the operation's parameters directly. v3 also renamed `desc::dims()` to `get_dims()`,
// dropped the scale argument of `post_ops::append_eltwise` and added pooling dilation.
//
// Included by src/model/onednn_plan.cpp only.
#pragma once

// With the PyPI LibTorch, oneDNN's header comes through build-pypi/prefer-system-include (an -I
// folder, so that it wins over the wheel's own copy): GCC then reports the header's own shadowed
// names under our -Wshadow. They are oneDNN's, not ours.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#include <oneapi/dnnl/dnnl.hpp>
#pragma GCC diagnostic pop

#include <vector>

namespace yolo2::compat {

inline constexpr int kOneDnnMajor = DNNL_VERSION_MAJOR;

inline dnnl::memory::dims dims_of(const dnnl::memory::desc& d) {
#if DNNL_VERSION_MAJOR >= 3
  return d.get_dims();
#else
  return d.dims();
#endif
}

// Leaky ReLU after the primitive: oneDNN's relu with a negative slope `alpha`.
inline dnnl::primitive_attr leaky_relu_attr(float alpha) {
  dnnl::post_ops ops;
#if DNNL_VERSION_MAJOR >= 3
  ops.append_eltwise(dnnl::algorithm::eltwise_relu, alpha, 0.0f);
#else
  ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, alpha, 0.0f);
#endif
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  return attr;
}

// Direct convolution for inference, symmetric padding.
inline dnnl::convolution_forward::primitive_desc convolution(const dnnl::engine& engine, const dnnl::memory::desc& src,
                                                             const dnnl::memory::desc& weights,
                                                             const dnnl::memory::desc& bias,
                                                             const dnnl::memory::desc& dst, int64_t stride,
                                                             int64_t padding, const dnnl::primitive_attr& attr) {
  const dnnl::memory::dims strides{stride, stride}, pad{padding, padding};
#if DNNL_VERSION_MAJOR >= 3
  return {engine,
          dnnl::prop_kind::forward_inference,
          dnnl::algorithm::convolution_direct,
          src,
          weights,
          bias,
          dst,
          strides,
          pad,
          pad,
          attr};
#else
  const dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src,
                                          weights, bias, dst, strides, pad, pad);
  return {d, attr, engine};
#endif
}

// Max pooling for inference, square window `kernel`, stride `stride`, no padding.
inline dnnl::pooling_forward::primitive_desc max_pooling(const dnnl::engine& engine, const dnnl::memory::desc& src,
                                                         const dnnl::memory::desc& dst, int64_t kernel,
                                                         int64_t stride) {
  const dnnl::memory::dims k{kernel, kernel}, s{stride, stride}, zero{0, 0};
#if DNNL_VERSION_MAJOR >= 3
  return {engine, dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max, src, dst, s, k, zero, zero, zero};
#else
  const dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max, src, dst, s, k,
                                      zero, zero);
  return {d, engine};
#endif
}

// Concatenation along `axis`; the destination layout is oneDNN's choice.
inline dnnl::concat::primitive_desc concat(const dnnl::engine& engine, int axis,
                                           const std::vector<dnnl::memory::desc>& srcs) {
#if DNNL_VERSION_MAJOR >= 3
  return {engine, axis, srcs};
#else
  return {axis, srcs, engine};
#endif
}

}  // namespace yolo2::compat
