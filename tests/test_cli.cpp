// The yolo2 program end to end, through the built executable: the global flags (-v/--verbose turns
// on debug logging, before or after the verb, and does not change what the verb does), `version`,
// and `eval --detections` scoring results files exactly as the library does.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <nlohmann/json.hpp>
#include <opencv2/core/version.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "test_util.hpp"
#include "yolo2/data/dataset.hpp"
#include "yolo2/data/synth.hpp"
#include "yolo2/eval/evaluator.hpp"
#include "yolo2/eval/results_io.hpp"
#include "yolo2/runtime/build_info.hpp"

#ifdef YOLO2_EXE

namespace {

using yolo2::testing::read_text;
using yolo2::testing::TempDir;

struct CliResult {
  int status = -1;
  std::string output;  // stdout and stderr together
};

// `yolo2 ARGS` through the shell (the arguments here need no quoting).
CliResult run_yolo2(const TempDir& dir, const std::string& args) {
  const std::string log = dir.file("out.txt");
  CliResult r;
  r.status = yolo2::testing::run_status(std::string(YOLO2_EXE) + " " + args + " > " + log + " 2>&1");
  r.output = read_text(log);
  return r;
}

// The line main() logs at debug level once the flags are parsed: the version and the command line.
const std::string kDebugLine = "] debug yolo2 ";

}  // namespace

TEST(Cli, VerboseLogsDebugLinesOnlyWhenAsked) {
  TempDir dir;
  const CliResult quiet = run_yolo2(dir, "config");
  ASSERT_EQ(quiet.status, 0) << quiet.output;
  EXPECT_EQ(quiet.output.find(kDebugLine), std::string::npos) << quiet.output;
  EXPECT_CONTAINS(quiet.output, "runtime:");  // the verb did its work

  for (const std::string flag : {"-v", "--verbose"}) {
    const CliResult loud = run_yolo2(dir, flag + " config");
    ASSERT_EQ(loud.status, 0) << loud.output;
    EXPECT_CONTAINS(loud.output, kDebugLine);
    EXPECT_CONTAINS(loud.output, "): yolo2 " + flag + " config");  // the command line, as given
    // Everything the quiet run printed is still there.
    EXPECT_CONTAINS(loud.output, quiet.output);
  }
}

TEST(Cli, VerboseIsAcceptedAfterTheVerbWithTheVerbsOwnOptions) {
  TempDir dir;
  const CliResult r = run_yolo2(dir, "config --set runtime.threads=3 --verbose");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_CONTAINS(r.output, kDebugLine);
  EXPECT_CONTAINS(r.output, "threads: 3");
}

// Passing unknown options up to the program (for --verbose) must not make them acceptable.
TEST(Cli, UnknownOptionAfterTheVerbIsStillAnError) {
  TempDir dir;
  const CliResult r = run_yolo2(dir, "config --no-such-flag");
  EXPECT_EQ(r.status, 2) << r.output;  // a usage error
  EXPECT_CONTAINS(r.output, "--no-such-flag");
}

// Flag values out of their range are usage errors (exit status 2) naming the flag and the value,
// before any work: a threshold that is NaN or negative (--conf), an IoU above 1 (--nms), a negative
// --stop-after or synth --seed, an info --size that is no input side.
TEST(Cli, OutOfRangeFlagValuesAreErrorsNamingTheFlag) {
  TempDir dir;
  yolo2::testing::write_text(dir.file("x.ckpt"), "not a checkpoint");
  yolo2::testing::write_text(dir.file("c.yaml"), "train:\n  lr: 0.1\n");
  const std::string detect = "detect --checkpoint " + dir.file("x.ckpt") + " -i " + dir.str();
  const std::string export_onnx =
      "export --checkpoint " + dir.file("x.ckpt") + " --format onnx -o " + dir.file("m.onnx");
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {detect + " --conf nan", "--conf: 'nan' is not in [0, 1]"},
           {detect + " --conf -1", "--conf: '-1' is not in [0, 1]"},
           {detect + " --nms 5", "--nms: '5' is not in [0, 1]"},
           {"train --config " + dir.file("c.yaml") + " --stop-after -1",
            "--stop-after: '-1' is not a whole number >= 1"},
           {"train --config " + dir.file("c.yaml") + " --stop-after 2.5", "--stop-after: '2.5' is not a whole number"},
           {"synth --out " + dir.file("s") + " --seed -1", "--seed: '-1' is not a whole number >= 0"},
           {"info --size 0", "--size: '0' is not an input size"},
           {"info --size 100", "--size: '100' is not an input size"},
           // export's ONNX flags: NaN went through CLI::Range and became the config's default.
           {export_onnx + " --conf nan", "--conf: 'nan' is not in [0, 1]"},
           {export_onnx + " --iou nan", "--iou: 'nan' is not in [0, 1]"},
           {export_onnx + " --size 100", "--size: '100' is not an input size"}}) {
    const CliResult r = run_yolo2(dir, args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.output;
    EXPECT_CONTAINS(r.output, message);
    EXPECT_EQ(r.output.find("Segmentation"), std::string::npos) << args;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("s"))) << "synth wrote nothing";
}

// --weights with --resume is an error naming both (a resumed run continues from its checkpoint's
// weights), before the checkpoint is even read.
TEST(Cli, ResumeWithWeightsIsAnError) {
  TempDir dir;
  yolo2::testing::write_text(dir.file("x.ckpt"), "not read");
  const CliResult r = run_yolo2(dir, "train --resume " + dir.file("x.ckpt") + " --weights " + dir.file("w.weights"));
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_CONTAINS(r.output, "--resume " + dir.file("x.ckpt") + " --weights " + dir.file("w.weights") +
                                ": a resumed run continues from the checkpoint's weights");
}

namespace yolo2 {
using testing::read_text;
using testing::TempDir;

TEST(Version, ReportsTheLibTorchItWasBuiltWith) {
  TempDir dir;
  const std::string out = dir.file("version.json");
  ASSERT_EQ(std::system((std::string(YOLO2_EXE) + " version --json > " + out).c_str()), 0);
  const std::string text = read_text(out);
  EXPECT_CONTAINS(text, std::string("\"libtorch\": \"") + TORCH_VERSION + "\"");
  EXPECT_CONTAINS(text, std::string("\"cuda_compiled\": ") + (runtime::cuda_compiled() ? "true" : "false"));
  EXPECT_CONTAINS(text, "\"opencv\": \"" CV_VERSION "\"");
  const runtime::BuildInfo info = runtime::build_info();
  EXPECT_EQ(info.gpus.size(), torch::cuda::is_available() ? torch::cuda::device_count() : 0u);
  if (runtime::cuda_compiled()) {
    EXPECT_FALSE(info.cuda_runtime.empty());
    EXPECT_FALSE(info.cudnn.empty());
  }
}

TEST(EvalCli, ScoringResultsFilesEqualsTheLibrary) {
  yolo2::testing::TempDir dir;
  data::SynthOptions so;
  so.out_dir = dir.file("voc");
  so.train = 4;
  so.test = 30;
  so.size = 96;
  so.threads = 1;
  const auto synth = data::write_synth(so);
  data::ParseOptions po;
  po.class_names = synth.class_names;
  const auto ds = data::load_dataset({{so.out_dir, "test"}}, po);
  // Detections: ground truths jittered, some dropped, some false positives.
  std::vector<eval::Detection> dets;
  uint64_t state = 12345;
  auto rnd = [&] {
    return static_cast<double>((state = state * 6364136223846793005ULL + 1442695040888963407ULL) >> 11) * 0x1.0p-53;
  };
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < ds.images.size(); ++i) {
    ids.push_back(ds.images[i].id);
    for (const auto& o : ds.images[i].objects) {
      if (rnd() < 0.2) continue;
      const float j = static_cast<float>(std::round((rnd() - 0.5) * 8));
      dets.push_back({static_cast<int>(i),
                      rnd() < 0.85 ? o.label : static_cast<int>(rnd() * 6),
                      static_cast<float>(std::round(rnd() * 1e6) / 1e6),
                      {std::max(0.0f, o.x1 + j), std::max(0.0f, o.y1 + j), o.x2 + j, o.y2 + j}});
    }
  }
  eval::write_voc_results(dir.file("det"), "test", synth.class_names, ids, dets);
  const auto expected = eval::evaluate_voc(eval::ground_truth(ds),
                                           eval::read_voc_results(dir.file("det"), "test", synth.class_names, ids),
                                           synth.class_names, {});
  const std::string cmd = std::string(YOLO2_EXE) + " eval --detections " + dir.file("det") + " --data " + so.out_dir +
                          " --split test --json " + dir.file("m.json") + " > " + dir.file("out.txt") + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << yolo2::testing::read_text(dir.file("out.txt"));
  const auto j = nlohmann::json::parse(yolo2::testing::read_text(dir.file("m.json")));
  EXPECT_EQ(j["metric"], "voc07");
  EXPECT_NEAR(j["map"].get<double>(), expected.map, 1e-12);
  EXPECT_GT(expected.map, 0.3);
  EXPECT_LT(expected.map, 0.99);
  for (const auto& c : expected.per_class)
    if (!std::isnan(c.ap)) {
      EXPECT_NEAR(j["per_class"][c.name].get<double>(), c.ap, 1e-12) << c.name;
    }
  EXPECT_EQ(j["detections"].get<int>(), static_cast<int>(dets.size()));
  // A malformed line is reported with its file and line.
  {
    std::ofstream bad(dir.file("det/comp4_det_test_" + synth.class_names[0] + ".txt"), std::ios::app);
    bad << "000031 0.5 1 2 3\n";
  }
  const std::string cmd2 = std::string(YOLO2_EXE) + " eval --detections " + dir.file("det") + " --data " + so.out_dir +
                           " --split test > " + dir.file("out2.txt") + " 2>&1";
  EXPECT_EQ(yolo2::testing::run_status(cmd2), 1);  // a named error, not a crash
  const std::string out = yolo2::testing::read_text(dir.file("out2.txt"));
  EXPECT_NE(out.find("comp4_det_test_" + synth.class_names[0] + ".txt:"), std::string::npos) << out;
}

}  // namespace yolo2

#endif
