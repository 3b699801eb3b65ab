// Shared by the focal-loss and region-loss tests: float64 references of the softmax focal loss and
// of torchvision's sigmoid focal loss (values and analytic gradients), and small numeric helpers.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <sstream>
#include <vector>

namespace yolo2::testing {

// |got - want| <= abs + rel |want|, with both numbers in the message.
inline ::testing::AssertionResult near(double got, double want, double rel = 1e-5, double abs = 1e-6) {
  if (std::isfinite(got) && std::abs(got - want) <= abs + rel * std::abs(want)) return ::testing::AssertionSuccess();
  std::ostringstream s;
  s.precision(10);
  s << "got " << got << ", want " << want << " (diff " << got - want << ")";
  return ::testing::AssertionFailure() << s.str();
}

inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double dsigmoid(double x) { return sigmoid(x) * sigmoid(-x); }
inline double logit(double p) { return std::log(p / (1 - p)); }

inline bool all_finite(const at::Tensor& t) { return at::isfinite(t).all().item<bool>(); }

// Softmax focal loss: float64 reference.

struct RowRef {
  double value = 0;
  std::vector<double> grad;  // d value / d z_j
};

// FL = -alpha_t (1 - p_t)^gamma log p_t with p = softmax(z) (log-sum-exp), and its analytic
// gradient alpha_t (p_j - y_j) w(p_t), w(p) = (1-p)^gamma - gamma p ln p (1-p)^(gamma-1).
// 1 - p_t is the sum of the other probabilities, exact where p_t rounds to 1.
inline RowRef softmax_focal_ref(const std::vector<double>& z, std::size_t t, double gamma, double alpha_t) {
  const std::size_t c_n = z.size();
  const std::size_t k = static_cast<std::size_t>(std::max_element(z.begin(), z.end()) - z.begin());
  double rest = 0;
  for (std::size_t j = 0; j < c_n; ++j)
    if (j != k) rest += std::exp(z[j] - z[k]);
  const double log_norm = z[k] + std::log1p(rest);
  std::vector<double> p(c_n);
  for (std::size_t j = 0; j < c_n; ++j) p[j] = std::exp(z[j] - log_norm);
  const double log_pt = z[t] - log_norm;
  double q = 0;
  for (std::size_t j = 0; j < c_n; ++j)
    if (j != t) q += p[j];
  RowRef r;
  r.value = -alpha_t * std::pow(q, gamma) * log_pt;
  double w = std::pow(q, gamma);  // gamma > 0, q -> 0: w -> (1 + gamma) q^gamma -> 0
  if (gamma > 0 && q > 0) w -= gamma * std::exp(log_pt) * log_pt * std::pow(q, gamma - 1);
  r.grad.resize(c_n);
  for (std::size_t j = 0; j < c_n; ++j) r.grad[j] = alpha_t * (j == t ? -q : p[j]) * w;
  return r;
}

// Sigmoid focal loss: torchvision.ops.sigmoid_focal_loss's formula in float64.

struct ElemRef {
  double value = 0, grad = 0;
};

// p = sigma(x); ce = BCE-with-logits; p_t = p y + (1-p)(1-y); loss = alpha_t ce (1 - p_t)^gamma,
// alpha_t = alpha y + (1 - alpha)(1 - y) when alpha >= 0. d/dx: ce' = p - y and
// d(1 - p_t)/dx = sigma'(x)(1 - 2y).
inline ElemRef sigmoid_focal_ref(double x, double y, double gamma, double alpha) {
  const double p = sigmoid(x), pm = sigmoid(-x);
  const double ce = std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::abs(x)));
  const double q = pm * y + p * (1 - y);
  const double at = alpha >= 0 ? alpha * y + (1 - alpha) * (1 - y) : 1.0;
  double g = (p - y) * std::pow(q, gamma);
  if (gamma > 0 && q > 0) g += ce * gamma * std::pow(q, gamma - 1) * p * pm * (1 - 2 * y);
  return {at * ce * std::pow(q, gamma), at * g};
}

}  // namespace yolo2::testing
