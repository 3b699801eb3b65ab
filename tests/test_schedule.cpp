// Tests of the training schedules: darknet's learning rate (burn-in, steps; yolov2-reference.md
// §1.1), cosine and constant policies, the focal gamma schedules ("soft gamma", §4.8) and
// darknet's multi-scale input size (§2.5).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "yolo2/config.hpp"
#include "yolo2/train/schedule.hpp"

namespace {

using yolo2::train::focal_gamma;
using yolo2::train::learning_rate;
using yolo2::train::multiscale_size;

constexpr double kPi = 3.14159265358979323846;

// Relative comparison for learning rates that span many orders of magnitude.
#define EXPECT_REL(got, want) EXPECT_NEAR((got), (want), 1e-12 * std::abs(want) + 1e-300)

yolo2::TrainConfig yolov2_voc() {
  yolo2::TrainConfig t;
  t.lr = 0.001;
  t.burn_in = 1000;
  t.burn_in_power = 4;
  t.policy = yolo2::LrPolicy::Steps;
  t.steps = {40000, 60000};
  t.scales = {0.1, 0.1};
  t.max_batches = 80200;
  return t;
}

TEST(ScheduleLearningRate, DefaultsAreDarknetYolov2Voc) {
  const yolo2::TrainConfig d;
  const yolo2::TrainConfig v = yolov2_voc();
  EXPECT_EQ(d.lr, v.lr);
  EXPECT_EQ(d.burn_in, v.burn_in);
  EXPECT_EQ(d.burn_in_power, v.burn_in_power);
  EXPECT_EQ(d.policy, v.policy);
  EXPECT_EQ(d.steps, v.steps);
  EXPECT_EQ(d.scales, v.scales);
  EXPECT_EQ(d.max_batches, v.max_batches);
}

TEST(ScheduleLearningRate, UpdatesAreCountedFromOneAsDarknetDoes) {
  // darknet: update_network runs after `seen += batch`, so get_current_batch is the number of the
  // update being made. yolov2-voc: the 40,000th update (0-based iteration 39,999) gets 1e-4.
  const yolo2::TrainConfig t = yolov2_voc();
  EXPECT_REL(learning_rate(t, 39999, t.max_batches), 1e-3);
  EXPECT_REL(learning_rate(t, 40000, t.max_batches), 1e-4);
  EXPECT_REL(learning_rate(t, 60000, t.max_batches), 1e-5);
  // The first update of the burn-in moves (1e-3 / 1000^4), and the 1000th is at full rate.
  EXPECT_REL(learning_rate(t, 1, t.max_batches), 1e-3 * std::pow(1e-3, 4));
  EXPECT_REL(learning_rate(t, 1000, t.max_batches), 1e-3);
}

TEST(ScheduleLearningRate, BurnInRisesAsTheFourthPower) {
  const yolo2::TrainConfig t = yolov2_voc();
  EXPECT_EQ(learning_rate(t, 0, t.max_batches), 0.0);
  EXPECT_REL(learning_rate(t, 100, t.max_batches), 1e-7);     // 1e-3 * 0.1^4
  EXPECT_REL(learning_rate(t, 500, t.max_batches), 6.25e-5);  // 1e-3 * 0.5^4
  EXPECT_REL(learning_rate(t, 999, t.max_batches), 1e-3 * std::pow(0.999, 4));
  EXPECT_REL(learning_rate(t, 1000, t.max_batches), 1e-3);
  EXPECT_REL(learning_rate(t, 1001, t.max_batches), 1e-3);
}

TEST(ScheduleLearningRate, StepsScaleFromTheStepIterationOn) {
  // darknet get_current_rate: `if (steps[i] > batch_num) return rate; rate *= scales[i];`
  const yolo2::TrainConfig t = yolov2_voc();
  const std::map<int64_t, double> want{{39999, 1e-3}, {40000, 1e-4}, {40001, 1e-4}, {59999, 1e-4},
                                       {60000, 1e-5}, {60001, 1e-5}, {80199, 1e-5}};
  for (const auto& [it, lr] : want) EXPECT_REL(learning_rate(t, it, t.max_batches), lr) << "iteration " << it;
}

TEST(ScheduleLearningRate, OldYoloVoc2StepsRaiseThenLower) {
  // yolo-voc.2.0.cfg: lr 1e-4, steps 100,25000,35000, scales 10,.1,.1, no burn-in.
  yolo2::TrainConfig t = yolov2_voc();
  t.lr = 1e-4;
  t.burn_in = 0;
  t.steps = {100, 25000, 35000};
  t.scales = {10, 0.1, 0.1};
  EXPECT_REL(learning_rate(t, 0, 45000), 1e-4);
  EXPECT_REL(learning_rate(t, 99, 45000), 1e-4);
  EXPECT_REL(learning_rate(t, 100, 45000), 1e-3);
  EXPECT_REL(learning_rate(t, 24999, 45000), 1e-3);
  EXPECT_REL(learning_rate(t, 25000, 45000), 1e-4);
  EXPECT_REL(learning_rate(t, 35000, 45000), 1e-5);
}

TEST(ScheduleLearningRate, CosineDecaysFromLrAtTheEndOfBurnInToZero) {
  yolo2::TrainConfig t = yolov2_voc();
  t.policy = yolo2::LrPolicy::Cosine;
  const int64_t max_batches = 11000;                        // cosine span 10000 iterations
  EXPECT_REL(learning_rate(t, 500, max_batches), 6.25e-5);  // burn-in first
  EXPECT_REL(learning_rate(t, 1000, max_batches), 1e-3);
  EXPECT_REL(learning_rate(t, 3500, max_batches), 1e-3 * 0.5 * (1 + std::cos(kPi / 4)));
  EXPECT_REL(learning_rate(t, 6000, max_batches), 0.5e-3);
  EXPECT_REL(learning_rate(t, 8500, max_batches), 1e-3 * 0.5 * (1 + std::cos(3 * kPi / 4)));
  EXPECT_NEAR(learning_rate(t, 11000, max_batches), 0.0, 1e-18);
  EXPECT_NEAR(learning_rate(t, 12000, max_batches), 0.0, 1e-18);
  // Monotone after burn-in.
  double prev = learning_rate(t, 1000, max_batches);
  for (int64_t it = 1100; it <= 11000; it += 100) {
    const double lr = learning_rate(t, it, max_batches);
    EXPECT_LE(lr, prev) << it;
    prev = lr;
  }
}

TEST(ScheduleLearningRate, ConstantIsLrAfterBurnIn) {
  yolo2::TrainConfig t = yolov2_voc();
  t.policy = yolo2::LrPolicy::Constant;
  EXPECT_REL(learning_rate(t, 100, t.max_batches), 1e-7);
  EXPECT_REL(learning_rate(t, 1000, t.max_batches), 1e-3);
  EXPECT_REL(learning_rate(t, 50000, t.max_batches), 1e-3);
  EXPECT_REL(learning_rate(t, 80199, t.max_batches), 1e-3);
  t.burn_in = 0;
  EXPECT_REL(learning_rate(t, 0, t.max_batches), 1e-3);
}

// ---------------------------------------------------------------------------------------------

yolo2::FocalConfig gamma_config(yolo2::GammaScheduleType type) {
  yolo2::FocalConfig f;
  f.gamma = 1.5;
  f.gamma_schedule.type = type;
  f.gamma_schedule.start = 0.5;
  f.gamma_schedule.end = 2.5;
  f.gamma_schedule.span_begin = 0.2;
  f.gamma_schedule.span_end = 0.6;
  f.gamma_schedule.milestones = {0.25, 0.5};
  f.gamma_schedule.values = {0.0, 1.0, 2.0};
  return f;
}

TEST(ScheduleFocalGamma, ConstantIsTheConfiguredGamma) {
  const yolo2::FocalConfig f = gamma_config(yolo2::GammaScheduleType::Constant);
  for (double p : {0.0, 0.1, 0.4, 0.6, 1.0}) EXPECT_DOUBLE_EQ(focal_gamma(f, p), 1.5) << p;
}

TEST(ScheduleFocalGamma, StepTakesTheValueAfterEachReachedMilestone) {
  const yolo2::FocalConfig f = gamma_config(yolo2::GammaScheduleType::Step);
  EXPECT_DOUBLE_EQ(focal_gamma(f, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(focal_gamma(f, 0.2499), 0.0);
  EXPECT_DOUBLE_EQ(focal_gamma(f, 0.25), 1.0);
  EXPECT_DOUBLE_EQ(focal_gamma(f, 0.4), 1.0);
  EXPECT_DOUBLE_EQ(focal_gamma(f, 0.5), 2.0);
  EXPECT_DOUBLE_EQ(focal_gamma(f, 1.0), 2.0);
}

TEST(ScheduleFocalGamma, LinearRampsBetweenSpanBeginAndEnd) {
  const yolo2::FocalConfig f = gamma_config(yolo2::GammaScheduleType::Linear);
  EXPECT_DOUBLE_EQ(focal_gamma(f, 0.0), 0.5);  // before span_begin
  EXPECT_DOUBLE_EQ(focal_gamma(f, 0.1), 0.5);
  EXPECT_DOUBLE_EQ(focal_gamma(f, 0.2), 0.5);
  EXPECT_NEAR(focal_gamma(f, 0.3), 1.0, 1e-12);  // a quarter of the ramp
  EXPECT_NEAR(focal_gamma(f, 0.4), 1.5, 1e-12);  // mid-ramp
  EXPECT_NEAR(focal_gamma(f, 0.5), 2.0, 1e-12);
  EXPECT_DOUBLE_EQ(focal_gamma(f, 0.6), 2.5);
  EXPECT_DOUBLE_EQ(focal_gamma(f, 0.9), 2.5);  // after span_end
  EXPECT_DOUBLE_EQ(focal_gamma(f, 1.0), 2.5);
}

TEST(ScheduleFocalGamma, CosineRampsSmoothlyBetweenSpanBeginAndEnd) {
  const yolo2::FocalConfig f = gamma_config(yolo2::GammaScheduleType::Cosine);
  EXPECT_DOUBLE_EQ(focal_gamma(f, 0.1), 0.5);
  EXPECT_NEAR(focal_gamma(f, 0.3), 0.5 + 2.0 * 0.5 * (1 - std::cos(kPi / 4)), 1e-12);
  EXPECT_NEAR(focal_gamma(f, 0.4), 1.5, 1e-12);
  EXPECT_NEAR(focal_gamma(f, 0.5), 0.5 + 2.0 * 0.5 * (1 - std::cos(3 * kPi / 4)), 1e-12);
  EXPECT_DOUBLE_EQ(focal_gamma(f, 0.7), 2.5);
  // Continuous at both ends of the span.
  EXPECT_NEAR(focal_gamma(f, 0.2 + 1e-9), 0.5, 1e-6);
  EXPECT_NEAR(focal_gamma(f, 0.6 - 1e-9), 2.5, 1e-6);
}

// ---------------------------------------------------------------------------------------------

yolo2::DataConfig multiscale_config() {
  yolo2::DataConfig d;
  d.input_size = 416;
  d.multiscale_sizes.clear();
  for (int s = 320; s <= 608; s += 32) d.multiscale_sizes.push_back(s);
  d.multiscale_every = 10;
  d.multiscale_final = 200;
  return d;
}

TEST(ScheduleMultiscale, ListedSizesOnlyOneSizePerGroupVaryingAcrossGroups) {
  const yolo2::DataConfig d = multiscale_config();
  const std::set<int> listed(d.multiscale_sizes.begin(), d.multiscale_sizes.end());
  const int64_t max_batches = 80200;
  std::set<int> seen_sizes;
  int changes = 0;
  int prev_group_size = -1;
  for (int64_t group = 0; group < 300; ++group) {
    const int first = multiscale_size(d, group * 10, max_batches, 42);
    EXPECT_EQ(listed.count(first), 1u) << first;
    for (int64_t k = 1; k < 10; ++k) EXPECT_EQ(multiscale_size(d, group * 10 + k, max_batches, 42), first);
    seen_sizes.insert(first);
    changes += prev_group_size >= 0 && first != prev_group_size;
    prev_group_size = first;
  }
  EXPECT_EQ(seen_sizes, listed);  // 300 draws from 10 sizes reach all of them
  EXPECT_GT(changes, 200);        // about 9 in 10 group boundaries change size
}

TEST(ScheduleMultiscale, LargestForTheLastFinalIterations) {
  // darknet: `if (get_current_batch(net) + 200 > net->max_batches) dim = 608;`
  const yolo2::DataConfig d = multiscale_config();
  const int64_t max_batches = 80200;
  for (int64_t it = 80001; it < max_batches; ++it) EXPECT_EQ(multiscale_size(d, it, max_batches, 7), 608) << it;
  // Before that, random draws: not all 608.
  int not_largest = 0;
  for (int64_t it = 79000; it <= 80000; it += 10) not_largest += multiscale_size(d, it, max_batches, 7) != 608;
  EXPECT_GT(not_largest, 50);
  // The boundary: iteration 80000 (80000 + 200 == max_batches) is still a draw, not forced.
  int forced = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) forced += multiscale_size(d, 80000, max_batches, seed) == 608;
  EXPECT_LT(forced, 20);
  // multiscale_final = 0 turns it off.
  yolo2::DataConfig no_final = d;
  no_final.multiscale_final = 0;
  int drawn = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) drawn += multiscale_size(no_final, 80190, max_batches, seed) != 608;
  EXPECT_GT(drawn, 0);
}

TEST(ScheduleMultiscale, DeterministicForASeedDifferentAcrossSeeds) {
  const yolo2::DataConfig d = multiscale_config();
  std::vector<int> a, b, c;
  for (int64_t it = 0; it < 2000; it += 10) {
    a.push_back(multiscale_size(d, it, 80200, 1));
    b.push_back(multiscale_size(d, it, 80200, 1));
    c.push_back(multiscale_size(d, it, 80200, 2));
  }
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(ScheduleMultiscale, NoListMeansTheInputSize) {
  yolo2::DataConfig d = multiscale_config();
  d.multiscale_sizes.clear();
  d.input_size = 352;
  for (int64_t it : {int64_t{0}, int64_t{15}, int64_t{80100}}) EXPECT_EQ(multiscale_size(d, it, 80200, 3), 352);
}

}  // namespace
