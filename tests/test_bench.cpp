// yolo2::bench on a tiny network: the report holds what the options ask for, with plausible values,
// and its JSON follows docs/bench-schema.json (checked against the schema file itself).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <set>

#include "test_util.hpp"
#include "train_fixtures.hpp"
#include "yolo2/bench/bench.hpp"

namespace yolo2 {
namespace {

using testing::TempDir;

nlohmann::json schema() {
  std::ifstream in(std::string(YOLO2_SOURCE_DIR) + "/docs/bench-schema.json");
  EXPECT_TRUE(in.good()) << "docs/bench-schema.json";
  return nlohmann::json::parse(in);
}

TEST(Bench, ReportFollowsTheSchemaAndHoldsWhatWasAsked) {
  TempDir dir;
  const std::string root = testing::make_dataset(dir, 24, 128, 3);
  Config c = testing::tiny_config(root, dir.file("run"));
  c.model.width = 0.125;
  c.data.input_size = 64;
  c.runtime.threads = 1;
  bench::BenchOptions o;
  o.repeats = 3;
  o.batches = 2;
  o.opencv = false;
  // ONNX Runtime through python3, from the test references where setup.sh installed them.
  ::setenv("PYTHONPATH", YOLO2_SOURCE_DIR "/.test-deps", 1);
  const bool have_ort = std::system("python3 -c 'import onnxruntime' > /dev/null 2>&1") == 0;
  const bench::BenchReport r = bench::run_bench(c, o);

  const nlohmann::json s = schema();
  const auto& item = s["properties"]["results"]["items"];
  std::set<std::string> ids(item["properties"]["id"]["enum"].begin(), item["properties"]["id"]["enum"].end());
  EXPECT_EQ(ids, std::set<std::string>(bench::measurement_ids().begin(), bench::measurement_ids().end()));
  const std::set<std::string> units(item["properties"]["unit"]["enum"].begin(),
                                    item["properties"]["unit"]["enum"].end());

  const nlohmann::json j = nlohmann::json::parse(bench::to_json(r));
  EXPECT_EQ(j["schema"], s["properties"]["schema"]["const"]);
  for (const auto& key : s["required"]) EXPECT_TRUE(j.contains(key.get<std::string>())) << key;
  for (const auto& [key, value] : j.items()) EXPECT_TRUE(s["properties"].contains(key)) << "not in the schema: " << key;
  EXPECT_EQ(j["input_size"], 64);
  EXPECT_EQ(j["threads"], 1);
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_EQ(j["precision"], "fp32");
  EXPECT_GT(j["gflop_per_image"].get<double>(), 0);
  std::set<std::string> seen;
  for (const auto& m : j["results"]) {
    for (const auto& key : item["required"]) EXPECT_TRUE(m.contains(key.get<std::string>())) << key;
    EXPECT_EQ(m.size(), item["required"].size());
    EXPECT_TRUE(ids.count(m["id"].get<std::string>())) << m["id"];
    EXPECT_TRUE(units.count(m["unit"].get<std::string>())) << m["unit"];
    EXPECT_TRUE(seen.insert(m["id"].get<std::string>()).second) << "twice: " << m["id"];
    EXPECT_GT(m["value"].get<double>(), 0) << m["id"];
  }
  for (const char* id : {"reference_conv_forward", "train_iteration", "train_phases", "train_peak_memory",
                         "forward_batch1", "forward_batch8", "decode_nms", "voc_scoring", "loader", "loader_decode",
                         "loader_host_gpu_path", "loader_host_gpu_path_cached", "loader_cached"})
    EXPECT_TRUE(seen.count(id)) << "missing: " << id;
  EXPECT_FALSE(seen.count("opencv_forward_batch1"));                        // not asked for
  EXPECT_EQ(seen.count("onnxruntime_forward_batch1"), have_ort ? 1u : 0u);  // skipped, with a message, without it
  EXPECT_EQ(seen.count("onnxruntime_forward_batch8"), have_ort ? 1u : 0u);
  EXPECT_FALSE(seen.count("train_iteration_other_layout"));
  EXPECT_FALSE(seen.count("train_peak_gpu_memory"));  // the GPU's figures
  EXPECT_FALSE(seen.count("forward_batch64"));
  // The phases of the iteration add up to about its time (median of each vs median of the sum).
  const double step_ms = 1000.0 * 8 / r.find("train_iteration")->value;
  EXPECT_NEAR(r.find("train_phases")->value, step_ms, 0.5 * step_ms);
  EXPECT_NE(bench::format_table(r).find("loader, full augmentation"), std::string::npos);
  // The GPU path's host cost is the CPU path's less the colour distortion, with byte packing.
  const auto ms = [&](const char* id) { return r.find(id)->value; };
  EXPECT_NEAR(ms("loader_host_gpu_path"),
              ms("loader_read") + ms("loader_decode") + ms("loader_warp") + ms("loader_pack_bytes"), 1e-9);
  EXPECT_LT(ms("loader_host_gpu_path_cached"), ms("loader_host_gpu_path"));
}

}  // namespace
}  // namespace yolo2
