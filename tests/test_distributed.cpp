// Data-parallel training on c10d (Gloo) with 2 processes on loopback: the shards of an epoch cover
// the data once and rebuild the single-process batch exactly; 2 ranks x 4 images train to the same
// weights as 1 rank x 8 (frozen batch norm, and live batch norm with synchronized statistics); a
// rank that dies makes the other exit non-zero with a clear message; torchrun's variables parse.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <set>
#include <sstream>

#include "test_util.hpp"
#include "train_fixtures.hpp"
#include "yolo2/data/dataset.hpp"
#include "yolo2/data/loader.hpp"
#include "yolo2/error.hpp"
#include "yolo2/io/checkpoint.hpp"
#include "yolo2/options.hpp"
#include "yolo2/runtime/distributed.hpp"
#include "yolo2/runtime/launch.hpp"

using namespace yolo2;
using namespace yolo2::testing;

namespace {

data::Dataset load(const Config& c) { return data::load_dataset(c.data.train, parse_options(c, false)); }

// Sets environment variables for one scope.
struct Env {
  std::vector<std::string> names;
  Env(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (const auto& [k, v] : vars) setenv(k, v, 1), names.emplace_back(k);
  }
  ~Env() {
    for (const auto& n : names) unsetenv(n.c_str());
  }
};

}  // namespace

// Every image of an epoch goes to exactly one rank, and rank r's part of global batch k is the
// slice [r * b / w, (r + 1) * b / w) of the batch one process builds, pixel for pixel (same crops,
// flips and colours), with multi-scale sizes shared.
TEST(Distributed, ShardsCoverTheEpochOnceAndRebuildTheGlobalBatch) {
  TempDir dir;
  const std::string root = make_dataset(dir, 24, 80, 11);
  Config c = tiny_config(root, dir.file("run"));
  c.data.augment = AugmentOptions{};  // full darknet augmentation
  const auto ds = load(c);
  ASSERT_EQ(ds.images.size(), 24u);
  data::LoaderOptions one = loader_options(c, true);
  one.batch_size = 8;
  one.size_for_batch = [](int64_t k) { return k % 2 ? 96 : 64; };
  for (int world : {2, 4}) {
    for (int64_t epoch = 0; epoch < 2; ++epoch) {
      std::multiset<int> seen;
      for (int64_t k = epoch * 3; k < epoch * 3 + 3; ++k) {  // 3 batches of 8 per epoch
        const data::Batch full = data::make_batch(ds, one, k);
        for (int r = 0; r < world; ++r) {
          data::LoaderOptions o = one;
          o.shard_rank = r, o.shard_count = world;
          const data::Batch part = data::make_batch(ds, o, k);
          const int64_t local = 8 / world;
          ASSERT_EQ(part.images.size(0), local);
          EXPECT_EQ(part.size, full.size);
          EXPECT_TRUE(part.images.equal(full.images.narrow(0, r * local, local)));
          EXPECT_TRUE(part.boxes.equal(full.boxes.narrow(0, r * local, local)));
          EXPECT_TRUE(part.labels.equal(full.labels.narrow(0, r * local, local)));
          seen.insert(part.image_indices.begin(), part.image_indices.end());
        }
      }
      ASSERT_EQ(seen.size(), 24u);
      for (int i = 0; i < 24; ++i) EXPECT_EQ(seen.count(i), 1u) << "image " << i << " epoch " << epoch;
    }
  }
  data::LoaderOptions bad = one;
  bad.shard_count = 3;  // 8 images do not split over 3 ranks
  EXPECT_CONTAINS(error_of([&] { data::make_batch(ds, bad, 0); }), "cannot split a batch of 8");
  EXPECT_CONTAINS(error_of([] { runtime::local_batch_size(8, 3); }), "multiple of the number of processes");
}

TEST(Distributed, TorchrunEnvironment) {
  {
    const auto d = runtime::dist_options_from_env();
    EXPECT_EQ(d.world_size, 1);
    EXPECT_FALSE(d.enabled());
  }
  {
    Env e{
        {"RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "10.0.0.2"}, {"MASTER_PORT", "29611"}};
    const auto d = runtime::dist_options_from_env();
    EXPECT_EQ(d.rank, 1);
    EXPECT_EQ(d.world_size, 4);
    EXPECT_EQ(d.local_rank, 1);
    EXPECT_EQ(d.master_addr, "10.0.0.2");
    EXPECT_EQ(d.master_port, 29611);
  }
  {
    Env e{{"RANK", "0"}};
    EXPECT_CONTAINS(error_of([] { runtime::dist_options_from_env(); }), "WORLD_SIZE");
  }
  {
    Env e{{"RANK", "4"}, {"WORLD_SIZE", "4"}};
    EXPECT_CONTAINS(error_of([] { runtime::dist_options_from_env(); }), "RANK='4'");
  }
  {
    Env e{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "http"}};
    EXPECT_CONTAINS(error_of([] { runtime::dist_options_from_env(); }), "MASTER_PORT='http'");
  }
}

#ifdef YOLO2_EXE
namespace {

int run_yolo2(const std::string& args, const std::string& log) {
  return run_status(std::string(YOLO2_EXE) + " " + args + " > " + log + " 2>&1");
}

// The equivalence setting: 4 iterations of batch 8 on 16 images with full augmentation and
// multi-scale, SGD with momentum and decay, 1 thread per process.
Config equivalence_config(const std::string& root, const std::string& run) {
  Config c = tiny_config(root, run);
  c.data.augment = AugmentOptions{};
  c.data.multiscale_sizes = {64, 96};
  c.data.multiscale_every = 2;
  c.data.multiscale_final = 1;
  c.data.input_size = 96;
  c.train.max_batches = 4;
  c.train.burn_in = 0;
  c.train.lr = 0.005;
  c.train.checkpoint_every = 100;
  c.train.log_every = 1;
  c.runtime.threads = 1;
  return c;
}

double compare_runs(const std::string& a, const std::string& b) {
  auto ca = io::load_checkpoint(a), cb = io::load_checkpoint(b);
  EXPECT_EQ(ca.state->iteration, cb.state->iteration);
  return max_abs_diff(*ca.model, *cb.model);
}

}  // namespace

class DistributedEquivalence : public ::testing::TestWithParam<bool> {};

// 2 processes x 4 images == 1 process x 8 images: after 4 optimizer steps with frozen batch norm
// (per-rank statistics would otherwise differ from the global batch's), and after one step with live
// batch norm made global by distributed.sync_bn.
TEST_P(DistributedEquivalence, TwoRanksOfFourEqualOneRankOfEight) {
  const bool sync_bn = GetParam();
  TempDir dir;
  const std::string root = make_dataset(dir, 16, 96, 21);
  Config c1 = equivalence_config(root, dir.file("one"));
  c1.train.freeze_bn = !sync_bn;
  // Live batch norm at initialisation is chaotic: one process run with 1 and then 2 threads (float
  // sums in another order) already differs by ~1e-2 after 4 steps at this learning rate and ~2e-4
  // at lr 1e-4. Synchronized BN is therefore compared after one step, where rounding has not been
  // amplified yet (the frozen case stays exact over all 4).
  if (sync_bn) c1.train.max_batches = 1;
  // The single-process reference runs in NCHW: LibTorch 1.13's channels-last batch-norm kernel sums
  // in float, sequentially (against double: 7-14x the rounding of its NCHW kernel, e.g. 6e-4 vs 9e-5
  // on a weight gradient over 8x48x48 values), which the first live-BN step amplifies to ~2e-3. The
  // distributed run keeps the default channels-last; synchronized BN sums in double either way.
  c1.runtime.channels_last = false;
  Config c2 = c1;
  c2.runtime.channels_last = true;
  c2.train.output = dir.file("two");
  c2.distributed.sync_bn = sync_bn;
  c2.distributed.timeout = 60;
  write_text(dir.file("one.yaml"), to_yaml(c1));
  ASSERT_EQ(run_yolo2("train --config " + dir.file("one.yaml") + " --no-eval", dir.file("one.log")), 0)
      << read_text(dir.file("one.log"));
  // --nproc divides runtime.threads (2 -> 1 each); the single run has 1 thread too.
  c2.runtime.threads = 2;
  write_text(dir.file("two.yaml"), to_yaml(c2));
  ASSERT_EQ(run_yolo2("train --config " + dir.file("two.yaml") + " --no-eval --nproc 2", dir.file("two.log")), 0)
      << read_text(dir.file("two.log"));
  const std::string log = read_text(dir.file("two.log"));
  EXPECT_CONTAINS(log, "rank 0 of 2");
  EXPECT_CONTAINS(log, "backend gloo");
  const double diff = compare_runs(dir.file("one/last.ckpt"), dir.file("two/last.ckpt"));
  EXPECT_LE(diff, 1e-5) << "max abs weight difference " << diff;
  // The weights did move: equality is not trivial.
  auto ck = io::load_checkpoint(dir.file("two/last.ckpt"));
  torch::manual_seed(c1.runtime.seed);
  model::YoloV2 fresh(model::yolov2_spec(c1.model, static_cast<int>(c1.data.classes.size())));
  EXPECT_GT(max_abs_diff(*fresh, *ck.model), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(BatchNorm, DistributedEquivalence, ::testing::Values(false, true),
                         [](const auto& param_info) { return param_info.param ? "SyncBn" : "FrozenBn"; });

// A run started on 2 processes, stopped after 2 steps and resumed on 1 ends where an uninterrupted
// single-process run ends (same global batch; frozen batch norm).
TEST(Distributed, ResumeOnAnotherNumberOfProcesses) {
  TempDir dir;
  const std::string root = make_dataset(dir, 16, 96, 24);
  Config c = equivalence_config(root, dir.file("one"));
  c.train.freeze_bn = true;
  write_text(dir.file("one.yaml"), to_yaml(c));
  ASSERT_EQ(run_yolo2("train --config " + dir.file("one.yaml") + " --no-eval", dir.file("one.log")), 0)
      << read_text(dir.file("one.log"));
  c.train.output = dir.file("two");
  c.runtime.threads = 2;
  write_text(dir.file("two.yaml"), to_yaml(c));
  ASSERT_EQ(
      run_yolo2("train --config " + dir.file("two.yaml") + " --no-eval --nproc 2 --stop-after 2", dir.file("a.log")), 0)
      << read_text(dir.file("a.log"));
  EXPECT_EQ(io::load_checkpoint(dir.file("two/last.ckpt")).state->iteration, 2);
  ASSERT_EQ(run_yolo2("train --resume " + dir.file("two/last.ckpt") + " --no-eval --set runtime.threads=1",
                      dir.file("b.log")),
            0)
      << read_text(dir.file("b.log"));
  const double diff = compare_runs(dir.file("one/last.ckpt"), dir.file("two/last.ckpt"));
  EXPECT_LE(diff, 1e-5) << "max abs weight difference " << diff;
}

// Without synchronized batch norm each rank's running statistics follow its own shard. Before every
// evaluation and save the ranks take rank 0's: the evaluation at the end of a 2-process run (each rank
// runs half the test images) scores what one process scores from the saved last.ckpt, class by class.
// (With each rank's own statistics, rank 1's half was detected by another network.)
TEST(Distributed, RanksEvaluateAndSaveWithRankZerosBatchNorm) {
  TempDir dir;
  const std::string root = make_dataset(dir, 16, 128, 24);
  Config c = tiny_config(root, dir.file("two"));  // no augmentation, 128 px
  c.train.max_batches = 120;
  c.train.steps = {100};
  c.eval.every = 0;  // the evaluation at the end
  // Saves by time as well, due within milliseconds: each save is a collective, so the ranks must agree
  // on every one of them (a rank saving alone would leave the other waiting until the timeout).
  c.train.checkpoint_minutes = 1e-4;
  c.runtime.threads = 2;
  c.distributed.timeout = 60;
  write_text(dir.file("two.yaml"), to_yaml(c));
  ASSERT_EQ(run_yolo2("train --config " + dir.file("two.yaml") + " --nproc 2", dir.file("two.log")), 0)
      << read_text(dir.file("two.log"));
  ASSERT_EQ(run_yolo2("eval --checkpoint " + dir.file("two/last.ckpt") + " --json " + dir.file("one.json") +
                          " --set runtime.threads=1",
                      dir.file("one.log")),
            0)
      << read_text(dir.file("one.log"));
  const auto rows = csv_rows(dir.file("two/eval.csv"));
  ASSERT_EQ(rows.size(), 1u);
  const nlohmann::json one = nlohmann::json::parse(read_text(dir.file("one.json")));
  EXPECT_GT(one["map"].get<double>(), 0.01) << "the network detects something: the comparison is not trivial";
  EXPECT_NEAR(rows[0][2], one["map"].get<double>(), 1e-6);
  for (std::size_t k = 0; k < c.data.classes.size(); ++k) {
    const auto& ap = one["per_class"][c.data.classes[k]];
    if (!ap.is_null()) {
      EXPECT_NEAR(rows[0][3 + k], ap.get<double>(), 1e-6) << c.data.classes[k];
    }
  }
}

// `yolo2 pretrain --nproc 2` goes through the same launcher and data-parallel step as `train`: the
// classifier trained by 2 ranks x 4 images ends where 1 rank x 8 ends (frozen batch norm), and the
// rank writes the darknet files once.
TEST(Distributed, PretrainTwoRanksEqualOne) {
  TempDir dir;
  const std::string root = make_classification_set(dir, 36, 0, 6, 31);
  Config c = classifier_config(root, dir.file("one"));
  c.train.optimizer = OptimizerKind::Sgd;
  c.train.lr = 0.1;  // darknet19.cfg's
  c.train.burn_in = 0;
  c.train.batch = 8;
  c.train.subdivisions = 1;
  c.train.max_batches = 4;
  c.train.freeze_bn = true;
  c.runtime.threads = 1;
  c.runtime.channels_last = false;  // see DistributedEquivalence
  write_text(dir.file("one.yaml"), to_yaml(c));
  ASSERT_EQ(run_yolo2("pretrain --config " + dir.file("one.yaml") + " --no-eval", dir.file("one.log")), 0)
      << read_text(dir.file("one.log"));
  c.train.output = dir.file("two");
  c.runtime.threads = 2;
  c.runtime.channels_last = true;
  c.distributed.timeout = 60;
  write_text(dir.file("two.yaml"), to_yaml(c));
  ASSERT_EQ(run_yolo2("pretrain --config " + dir.file("two.yaml") + " --no-eval --nproc 2", dir.file("two.log")), 0)
      << read_text(dir.file("two.log"));
  EXPECT_CONTAINS(read_text(dir.file("two.log")), "rank 0 of 2");
  const double diff = compare_runs(dir.file("one/last.ckpt"), dir.file("two/last.ckpt"));
  EXPECT_LE(diff, 1e-5) << "max abs weight difference " << diff;
  auto ck = io::load_checkpoint(dir.file("two/last.ckpt"));
  torch::manual_seed(c.runtime.seed);
  model::YoloV2 fresh(model::network_spec(c.model, 6));
  EXPECT_GT(max_abs_diff(*fresh, *ck.model), 1e-3) << "the weights moved";
  EXPECT_TRUE(std::filesystem::exists(dir.file("two/backbone.conv.23")));
}

class DeadRank : public ::testing::TestWithParam<bool> {};

// A rank killed mid-training (SIGKILL: no goodbye), or one that hangs (SIGSTOP), makes the other
// exit non-zero within distributed.timeout, saying which rank it is and what failed; last.ckpt
// stays loadable.
TEST_P(DeadRank, EndsTheJobWithAMessage) {
  const bool hang = GetParam();
  TempDir dir;
  const std::string root = make_dataset(dir, 16, 96, 22);
  Config c = equivalence_config(root, dir.file("run"));
  c.train.max_batches = 100000;
  c.train.checkpoint_every = 2;
  c.distributed.timeout = hang ? 6 : 20;
  write_text(dir.file("c.yaml"), to_yaml(c));
  const std::string port = std::to_string(runtime::free_local_port());
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r) {
    Env e{{"RANK", r ? "1" : "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", port.c_str()}};
    pids.push_back(spawn_yolo2({"train", "--config", dir.file("c.yaml"), "--no-eval"},
                               dir.file("rank" + std::to_string(r) + ".log")));
  }
  wait_for_file(dir.file("run/last.ckpt"));  // training is under way
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto t0 = std::chrono::steady_clock::now();
  kill(pids[1], hang ? SIGSTOP : SIGKILL);
  int status = 0;
  if (!hang) waitpid(pids[1], &status, 0);
  // Rank 0 must end by itself; a watchdog kills it only if it hangs far past the timeout.
  const auto deadline = t0 + std::chrono::seconds(static_cast<int>(c.distributed.timeout) + 30);
  pid_t done = 0;
  while ((done = waitpid(pids[0], &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (hang) {
    int s1 = 0;
    kill(pids[1], SIGKILL);
    waitpid(pids[1], &s1, 0);
  }
  if (done == 0) {
    kill(pids[0], SIGKILL);
    waitpid(pids[0], &status, 0);
    FAIL() << "rank 0 still running long after rank 1 failed:\n" << read_text(dir.file("rank0.log"));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string out = read_text(dir.file("rank0.log"));
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_NE(WEXITSTATUS(status), 0) << out;
  EXPECT_LE(seconds, c.distributed.timeout + 5) << out;
  EXPECT_CONTAINS(out, "distributed: rank 0 of 2: ");
  EXPECT_CONTAINS(out, "Another rank has exited or did not answer within distributed.timeout (" +
                           std::to_string(static_cast<int>(c.distributed.timeout)) + " s)");
  const auto ck = io::load_checkpoint(dir.file("run/last.ckpt"));
  ASSERT_TRUE(ck.state.has_value());
  EXPECT_GE(ck.state->iteration, 2);
}

INSTANTIATE_TEST_SUITE_P(Distributed, DeadRank, ::testing::Values(false, true),
                         [](const auto& param_info) { return param_info.param ? "Hangs" : "Dies"; });

// Deferred scalars under several processes (a GPU job's default, forced here with --scalars): the
// ranks exchange the steps' scalars once per read, and metrics.csv holds the global values that the
// per-micro-batch exchange gives (to its 8 digits; the sums run in another order), with the same
// weights. A loss that turns non-finite stops every rank at the same read (no rank left waiting
// in a collective), before any of the steps since is saved.
TEST(Distributed, DeferredScalarsAreGlobalAndStopEveryRank) {
  TempDir dir;
  const std::string root = make_dataset(dir, 12, 96, 29);
  Config c = equivalence_config(root, dir.file("every"));
  c.train.max_batches = 6;
  c.train.subdivisions = 2;
  c.train.log_every = 3;
  c.distributed.timeout = 60;
  c.runtime.threads = 2;
  write_text(dir.file("every.yaml"), to_yaml(c));
  c.train.output = dir.file("deferred");
  write_text(dir.file("deferred.yaml"), to_yaml(c));
  for (const std::string run : {"every", "deferred"}) {
    const std::string mode = run == "every" ? "every-step" : "deferred";
    ASSERT_EQ(run_yolo2("train --config " + dir.file(run + ".yaml") + " --no-eval --nproc 2 --scalars " + mode,
                        dir.file(run + ".log")),
              0)
        << read_text(dir.file(run + ".log"));
  }
  const std::string header = read_text(dir.file("every/metrics.csv")).substr(0, 200);
  const auto a = csv_rows(dir.file("every/metrics.csv")), b = csv_rows(dir.file("deferred/metrics.csv"));
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 6u);
  std::vector<std::string> names;
  {
    std::stringstream line(header.substr(0, header.find('\n')));
    for (std::string cell; std::getline(line, cell, ',');) names.push_back(cell);
  }
  for (std::size_t r = 0; r < a.size(); ++r) {
    ASSERT_EQ(a[r].size(), names.size());
    ASSERT_EQ(b[r].size(), names.size());
    for (std::size_t k = 0; k < names.size(); ++k) {
      if (names[k] == "images_per_s") continue;
      EXPECT_NEAR(a[r][k], b[r][k], 1e-6 * std::max(1.0, std::abs(a[r][k]))) << "row " << r << " " << names[k];
    }
  }
  EXPECT_EQ(compare_runs(dir.file("every/last.ckpt"), dir.file("deferred/last.ckpt")), 0.0);

  // lr 0.005, then x 1000 at each step from iteration 5 on: the loss leaves the finite numbers after
  // the save at iteration 4, and the read at 8 finds it.
  c.train.output = dir.file("bad");
  c.train.max_batches = 12;
  c.train.log_every = 4;
  c.train.checkpoint_every = 4;
  c.train.steps = {5, 6, 7, 8};
  c.train.scales = {1000, 1000, 1000, 1000};
  write_text(dir.file("bad.yaml"), to_yaml(c));
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = run_yolo2("train --config " + dir.file("bad.yaml") + " --no-eval --nproc 2 --scalars deferred",
                           dir.file("bad.log"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string out = read_text(dir.file("bad.log"));
  EXPECT_NE(rc, 0) << out;
  EXPECT_LT(seconds, c.distributed.timeout) << out;  // nobody waited for a peer that had stopped
  // Each rank found it at its own read (not through a peer's exit).
  const auto first = out.find("is not finite");
  ASSERT_NE(first, std::string::npos) << out;
  EXPECT_NE(out.find("is not finite", first + 1), std::string::npos) << out;
  EXPECT_EQ(out.find("did not answer"), std::string::npos) << out;
  ASSERT_TRUE(std::filesystem::exists(dir.file("bad/last.ckpt"))) << out;
  const auto ck = io::load_checkpoint(dir.file("bad/last.ckpt"));
  for (const auto& t : ck.model->parameters()) EXPECT_TRUE(t.isfinite().all().item<bool>());
}

// --nproc: a rank that fails ends the whole job, and the launcher says which one.
TEST(Distributed, LauncherReportsAFailingRank) {
  TempDir dir;
  const std::string root = make_dataset(dir, 12, 96, 23);
  Config c = equivalence_config(root, dir.file("run"));
  c.train.batch = 8;  // 8 images do not split over 3 processes: every rank stops with an error
  write_text(dir.file("c.yaml"), to_yaml(c));
  const int rc = run_yolo2("train --config " + dir.file("c.yaml") + " --no-eval --nproc 3", dir.file("log"));
  const std::string out = read_text(dir.file("log"));
  EXPECT_NE(rc, 0) << out;
  EXPECT_CONTAINS(out, "cannot be split evenly over 3 ranks");
  EXPECT_CONTAINS(out, "launch: rank");
}
#endif
