// The checkpoint file (io/checkpoint.hpp): model weights and config round-trip bit for bit,
// foreign and truncated files are clear errors, and a write interrupted by SIGKILL never leaves a
// broken last.ckpt (the rename is atomic).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "test_util.hpp"
#include "train_fixtures.hpp"
#include "yolo2/config.hpp"
#include "yolo2/error.hpp"
#include "yolo2/io/checkpoint.hpp"
#include "yolo2/model/yolov2.hpp"

using namespace yolo2;
using namespace yolo2::testing;

TEST(Checkpoint, HoldsWeightsAndConfig) {
  yolo2::testing::TempDir dir;
  Config c = parse_config("model: {width: 0.125}\ndata: {classes: [a, b, c]}\n");
  auto m = model::YoloV2(model::yolov2_spec(c.model, 3));
  randomize_batchnorm(*m);
  io::save_checkpoint(dir.file("m.ckpt"), *m, c);
  auto ck = io::load_checkpoint(dir.file("m.ckpt"));
  EXPECT_EQ(ck.config.data.classes, c.data.classes);
  EXPECT_EQ(to_yaml(ck.config), to_yaml(c));
  EXPECT_TRUE(bit_identical(*m, *ck.model));
  EXPECT_FALSE(ck.state.has_value());
  // Foreign and truncated files are clear errors.
  yolo2::testing::write_text(dir.file("foreign.ckpt"), "not a checkpoint");
  EXPECT_THROW(io::load_checkpoint(dir.file("foreign.ckpt")), Error);
  const std::string bytes = yolo2::testing::read_text(dir.file("m.ckpt"));
  yolo2::testing::write_text(dir.file("cut.ckpt"), bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(io::load_checkpoint(dir.file("cut.ckpt")), Error);
}

#ifdef YOLO2_EXE

// A checkpoint being written when the process is killed (SIGKILL, no chance to clean up) never
// leaves a broken last.ckpt: the rename is atomic.
TEST(Checkpoint, KillDuringTrainingLeavesALoadableCheckpoint) {
  yolo2::testing::TempDir dir;
  const std::string root = make_dataset(dir, 8, 96, 7);
  Config c = tiny_config(root, dir.file("run"));
  c.train.max_batches = 100000;
  c.train.checkpoint_every = 1;  // a checkpoint write in flight most of the time
  c.runtime.threads = 1;
  yolo2::testing::write_text(dir.file("c.yaml"), to_yaml(c));
  for (int round = 0; round < 3; ++round) {
    const pid_t pid =
        round == 0 ? spawn_yolo2({"train", "--config", dir.file("c.yaml"), "--no-eval", "--overwrite"}, dir.file("log"))
                   : spawn_yolo2({"train", "--resume", dir.file("run/last.ckpt"), "--no-eval"}, dir.file("log"));
    ASSERT_GT(pid, 0);
    // Let it write a few checkpoints, then kill it at an arbitrary moment.
    wait_for_file(dir.file("run/last.ckpt"));
    std::this_thread::sleep_for(std::chrono::milliseconds(700 + 311 * round));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << yolo2::testing::read_text(dir.file("log"));
    const auto ck = io::load_checkpoint(dir.file("run/last.ckpt"));
    ASSERT_TRUE(ck.state.has_value());
    EXPECT_GE(ck.state->iteration, 1);
  }
}

#endif
