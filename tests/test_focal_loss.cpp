// Tests of the focal losses against independent float64 references (loss_reference.hpp): the softmax
// focal loss (values and the analytic gradient alpha_t (p_j - y_j) w(p_t)), its gamma = 0 identity
// with cross-entropy, and the sigmoid focal loss (torchvision's formula).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "loss_reference.hpp"
#include "yolo2/loss/focal_loss.hpp"
#include "yolo2/util/rng.hpp"

namespace {

namespace L = yolo2::loss;
using yolo2::testing::all_finite;
using yolo2::testing::ElemRef;
using yolo2::testing::near;
using yolo2::testing::RowRef;
using yolo2::testing::sigmoid_focal_ref;
using yolo2::testing::softmax_focal_ref;
using yolo2::util::Rng;

std::vector<double> row_of(const at::Tensor& t2d, int64_t r) {
  const at::Tensor row = t2d[r].to(at::kDouble).contiguous();
  return std::vector<double>(row.data_ptr<double>(), row.data_ptr<double>() + row.numel());
}

const char* reduction_name(L::Reduction r) {
  switch (r) {
    case L::Reduction::None:
      return "none";
    case L::Reduction::Sum:
      return "sum";
    case L::Reduction::Mean:
      return "mean";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Softmax focal loss.

struct FocalCase {
  at::Tensor logits;   // [N, C] float
  at::Tensor targets;  // [N] int64
};

// Random rows plus saturated ones: the true class leading by 15, 30, 100 (p_t rounds to 1 in
// float32 from about 17 on) and trailing by 100.
FocalCase focal_case(int64_t n_random, int64_t c_n, uint64_t seed) {
  Rng rng(seed);
  const std::vector<double> saturation{15, 30, 100, -100, 100, -100};
  const int64_t n = n_random + static_cast<int64_t>(saturation.size());
  FocalCase fc{at::empty({n, c_n}, at::kFloat), at::empty({n}, at::kLong)};
  auto z = fc.logits.accessor<float, 2>();
  auto t = fc.targets.accessor<int64_t, 1>();
  for (int64_t r = 0; r < n; ++r) {
    t[r] = rng.uniform_int(0, c_n - 1);
    for (int64_t c = 0; c < c_n; ++c) z[r][c] = static_cast<float>(rng.uniform(-6, 6));
    if (r >= n_random) {
      const double lead = saturation[static_cast<std::size_t>(r - n_random)];
      double others = lead > 0 ? -1e9 : 1e9;
      for (int64_t c = 0; c < c_n; ++c)
        if (c != t[r]) others = lead > 0 ? std::max<double>(others, z[r][c]) : std::min<double>(others, z[r][c]);
      z[r][t[r]] = static_cast<float>(others + lead);
    }
  }
  return fc;
}

const std::vector<double> kPerClassAlpha{0.25, 1.5, 0.75, 2.0, 1.0};

TEST(FocalLoss, MatchesFloat64ReferenceValuesAndGradients) {
  const int64_t c_n = 5;
  const FocalCase fc = focal_case(48, c_n, 7);
  const int64_t n = fc.logits.size(0);
  Rng rng(11);
  std::vector<float> upstream(static_cast<std::size_t>(n));  // d total / d loss_i for reduction none
  for (auto& v : upstream) v = static_cast<float>(rng.uniform(0.5, 1.5));
  const at::Tensor v_t = at::tensor(upstream, at::kFloat);
  for (double gamma : {0.0, 0.1, 0.5, 0.9, 1.0, 2.0, 5.0}) {
    for (bool with_alpha : {false, true}) {
      for (L::Reduction red : {L::Reduction::None, L::Reduction::Sum, L::Reduction::Mean}) {
        SCOPED_TRACE(::testing::Message()
                     << "gamma " << gamma << (with_alpha ? " alpha" : " no alpha") << " " << reduction_name(red));
        L::FocalLossOptions o;
        o.gamma = gamma;
        o.reduction = red;
        if (with_alpha) o.alpha = at::tensor(kPerClassAlpha, at::kDouble);
        const at::Tensor x = fc.logits.clone().requires_grad_(true);
        const at::Tensor loss = L::focal_loss(x, fc.targets, o);
        double sum = 0;
        std::vector<RowRef> ref;
        for (int64_t r = 0; r < n; ++r) {
          const auto t = static_cast<std::size_t>(fc.targets[r].item<int64_t>());
          ref.push_back(softmax_focal_ref(row_of(fc.logits, r), t, gamma, with_alpha ? kPerClassAlpha[t] : 1.0));
          sum += ref.back().value;
        }
        std::vector<double> row_scale(static_cast<std::size_t>(n), 1.0);
        if (red == L::Reduction::None) {
          ASSERT_EQ(loss.sizes(), at::IntArrayRef({n}));
          for (int64_t r = 0; r < n; ++r)
            EXPECT_TRUE(near(loss[r].item<double>(), ref[static_cast<std::size_t>(r)].value)) << "row " << r;
          loss.backward(v_t);
          for (int64_t r = 0; r < n; ++r)
            row_scale[static_cast<std::size_t>(r)] = upstream[static_cast<std::size_t>(r)];
        } else {
          ASSERT_EQ(loss.dim(), 0);
          const double want = red == L::Reduction::Sum ? sum : sum / static_cast<double>(n);
          EXPECT_TRUE(near(loss.item<double>(), want));
          loss.backward();
          if (red == L::Reduction::Mean) std::fill(row_scale.begin(), row_scale.end(), 1.0 / static_cast<double>(n));
        }
        const at::Tensor g = x.grad();
        ASSERT_TRUE(all_finite(g));
        for (int64_t r = 0; r < n; ++r)
          for (int64_t c = 0; c < c_n; ++c) {
            const auto ru = static_cast<std::size_t>(r);
            EXPECT_TRUE(near(g[r][c].item<double>(), row_scale[ru] * ref[ru].grad[static_cast<std::size_t>(c)]))
                << "row " << r << " class " << c;
          }
      }
    }
  }
}

TEST(FocalLoss, FiniteValuesAndGradientsForFractionalGammasOnSaturatedRows) {
  const FocalCase fc = focal_case(16, 5, 3);
  // Extreme rows on top: lead and trail by 1000, all logits equal.
  const at::Tensor extra =
      at::tensor({1000.f, 0.f, 0.f, 0.f, 0.f, -1000.f, 0.f, 0.f, 0.f, 0.f, 3.f, 3.f, 3.f, 3.f, 3.f}).view({3, 5});
  const at::Tensor logits = at::cat({fc.logits, extra});
  const at::Tensor targets = at::cat({fc.targets, at::tensor({int64_t{0}, int64_t{0}, int64_t{4}})});
  for (double gamma : {0.0, 0.1, 0.5, 0.9, 1.0, 2.0, 5.0})
    for (bool with_alpha : {false, true})
      for (L::Reduction red : {L::Reduction::None, L::Reduction::Sum, L::Reduction::Mean}) {
        SCOPED_TRACE(::testing::Message() << "gamma " << gamma << " " << reduction_name(red));
        L::FocalLossOptions o{gamma, with_alpha ? at::tensor(kPerClassAlpha, at::kFloat) : at::Tensor(), red};
        const at::Tensor x = logits.clone().requires_grad_(true);
        const at::Tensor loss = L::focal_loss(x, targets, o);
        EXPECT_TRUE(all_finite(loss));
        loss.sum().backward();
        EXPECT_TRUE(all_finite(x.grad()));
      }
}

TEST(FocalLoss, GammaZeroWithoutAlphaEqualsCrossEntropy) {
  const FocalCase fc = focal_case(40, 6, 5);
  const int64_t n = fc.logits.size(0);
  const at::Tensor v = at::linspace(0.5, 1.5, n, at::kFloat);
  for (L::Reduction red : {L::Reduction::None, L::Reduction::Sum, L::Reduction::Mean}) {
    SCOPED_TRACE(reduction_name(red));
    const int64_t at_red = red == L::Reduction::None  ? at::Reduction::None
                           : red == L::Reduction::Sum ? at::Reduction::Sum
                                                      : at::Reduction::Mean;
    const at::Tensor x1 = fc.logits.clone().requires_grad_(true), x2 = fc.logits.clone().requires_grad_(true);
    const at::Tensor fl = L::focal_loss(x1, fc.targets, {0.0, {}, red});
    const at::Tensor ce = at::cross_entropy_loss(x2, fc.targets, {}, at_red);
    ASSERT_EQ(fl.sizes(), ce.sizes());
    EXPECT_TRUE(at::allclose(fl, ce, 1e-7, 1e-7)) << (fl - ce).abs().max();
    if (red == L::Reduction::None) {
      fl.backward(v);
      ce.backward(v);
    } else {
      fl.backward();
      ce.backward();
    }
    EXPECT_TRUE(at::allclose(x1.grad(), x2.grad(), 1e-7, 1e-7)) << (x1.grad() - x2.grad()).abs().max();
  }
}

TEST(FocalLoss, GammaZeroWithAlphaIsClassWeightedCrossEntropySum) {
  // torch's weighted mean divides by the sum of weights; ours (PY2's FocalLoss) by N, so only
  // none and sum are comparable.
  const FocalCase fc = focal_case(30, 5, 9);
  const at::Tensor alpha = at::tensor(kPerClassAlpha, at::kFloat);
  const at::Tensor fl = L::focal_loss(fc.logits, fc.targets, {0.0, alpha, L::Reduction::Sum});
  const at::Tensor ce = at::cross_entropy_loss(fc.logits, fc.targets, alpha, at::Reduction::Sum);
  EXPECT_TRUE(near(fl.item<double>(), ce.item<double>(), 1e-6));
  const at::Tensor fl_mean = L::focal_loss(fc.logits, fc.targets, {0.0, alpha, L::Reduction::Mean});
  EXPECT_TRUE(near(fl_mean.item<double>(), ce.item<double>() / static_cast<double>(fc.logits.size(0)), 1e-6));
}

// ---------------------------------------------------------------------------------------------
// Sigmoid focal loss, against torchvision.ops.sigmoid_focal_loss's formula in float64.

struct SigmoidCase {
  at::Tensor logits, targets;  // [N, C] float each
};

SigmoidCase sigmoid_case(bool soft_targets, uint64_t seed) {
  const int64_t n = 12, c_n = 4;
  Rng rng(seed);
  SigmoidCase sc{at::empty({n, c_n}, at::kFloat), at::zeros({n, c_n}, at::kFloat)};
  auto x = sc.logits.accessor<float, 2>();
  auto y = sc.targets.accessor<float, 2>();
  const std::vector<float> saturated{30, -30, 100, -100};
  for (int64_t r = 0; r < n; ++r) {
    const int64_t label = rng.uniform_int(0, c_n - 1);
    for (int64_t c = 0; c < c_n; ++c) {
      x[r][c] = static_cast<float>(rng.uniform(-6, 6));
      if (soft_targets) y[r][c] = static_cast<float>(rng.uniform());
    }
    if (!soft_targets) y[r][label] = 1;
    if (r >= n - 4) x[r][label] = saturated[static_cast<std::size_t>(r - (n - 4))];  // saturated both ways
  }
  return sc;
}

TEST(SigmoidFocalLoss, MatchesTorchvisionFormulaInFloat64) {
  const std::vector<double> class_weight{0.5, 2.0, 1.25, 0.75};
  for (bool soft : {false, true}) {
    const SigmoidCase sc = sigmoid_case(soft, soft ? 21 : 22);
    const int64_t n = sc.logits.size(0), c_n = sc.logits.size(1);
    const at::Tensor v = at::linspace(0.5, 1.5, n * c_n, at::kFloat).view({n, c_n});
    for (double gamma : {0.0, 0.5, 2.0, 5.0})
      for (double alpha : {-1.0, 0.25})
        for (bool weighted : {false, true}) {
          if (weighted && soft) continue;  // the class weight picks each row's one-hot class
          for (L::Reduction red : {L::Reduction::None, L::Reduction::Sum, L::Reduction::Mean}) {
            SCOPED_TRACE(::testing::Message() << (soft ? "soft" : "one-hot") << " gamma " << gamma << " alpha " << alpha
                                              << (weighted ? " class weight " : " ") << reduction_name(red));
            L::SigmoidFocalLossOptions o;
            o.gamma = gamma;
            o.alpha = alpha;
            o.reduction = red;
            if (weighted) o.class_weight = at::tensor(class_weight, at::kFloat);
            const at::Tensor x = sc.logits.clone().requires_grad_(true);
            const at::Tensor loss = L::sigmoid_focal_loss(x, sc.targets, o);
            std::vector<ElemRef> ref(static_cast<std::size_t>(n * c_n));
            double sum = 0;
            for (int64_t r = 0; r < n; ++r) {
              const double w =
                  weighted ? class_weight[static_cast<std::size_t>(sc.targets[r].argmax().item<int64_t>())] : 1.0;
              for (int64_t c = 0; c < c_n; ++c) {
                ElemRef e =
                    sigmoid_focal_ref(sc.logits[r][c].item<double>(), sc.targets[r][c].item<double>(), gamma, alpha);
                e.value *= w, e.grad *= w;
                sum += e.value;
                ref[static_cast<std::size_t>(r * c_n + c)] = e;
              }
            }
            if (red == L::Reduction::None) {
              ASSERT_EQ(loss.sizes(), sc.logits.sizes());
              for (int64_t k = 0; k < n * c_n; ++k)
                EXPECT_TRUE(near(loss.view(-1)[k].item<double>(), ref[static_cast<std::size_t>(k)].value)) << k;
              loss.backward(v);
            } else {
              const double want = red == L::Reduction::Sum ? sum : sum / static_cast<double>(n * c_n);
              EXPECT_TRUE(near(loss.item<double>(), want));
              loss.backward();
            }
            const at::Tensor g = x.grad().view(-1);
            for (int64_t k = 0; k < n * c_n; ++k) {
              const double scale = red == L::Reduction::None  ? v.view(-1)[k].item<double>()
                                   : red == L::Reduction::Sum ? 1.0
                                                              : 1.0 / static_cast<double>(n * c_n);
              EXPECT_TRUE(near(g[k].item<double>(), scale * ref[static_cast<std::size_t>(k)].grad)) << k;
            }
          }
        }
  }
}

TEST(SigmoidFocalLoss, GammaZeroIsBinaryCrossEntropyWithLogits) {
  const SigmoidCase sc = sigmoid_case(false, 23);
  L::SigmoidFocalLossOptions o;
  o.gamma = 0;
  o.reduction = L::Reduction::Sum;
  const at::Tensor fl = L::sigmoid_focal_loss(sc.logits, sc.targets, o);
  const at::Tensor bce = at::binary_cross_entropy_with_logits(sc.logits, sc.targets, {}, {}, at::Reduction::Sum);
  EXPECT_TRUE(near(fl.item<double>(), bce.item<double>(), 1e-7, 0));
}

TEST(SigmoidFocalLoss, FiniteForFractionalGammasOnSaturatedLogits) {
  const SigmoidCase sc = sigmoid_case(false, 24);
  for (double gamma : {0.0, 0.1, 0.5, 0.9, 1.0, 2.0, 5.0}) {
    SCOPED_TRACE(gamma);
    L::SigmoidFocalLossOptions o;
    o.gamma = gamma;
    o.alpha = 0.25;
    o.reduction = L::Reduction::Sum;
    const at::Tensor x = sc.logits.clone().requires_grad_(true);
    const at::Tensor loss = L::sigmoid_focal_loss(x, sc.targets, o);
    EXPECT_TRUE(all_finite(loss));
    loss.backward();
    EXPECT_TRUE(all_finite(x.grad()));
  }
}

}  // namespace
