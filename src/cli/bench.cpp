// `yolo2 bench`: measured speed of the pieces of training and evaluation.
#include <spdlog/spdlog.h>

#include <chrono>
#include <iostream>

#include "verbs.hpp"
#include "yolo2/data/loader.hpp"
#include "yolo2/util/runtime.hpp"

namespace yolo2::cli {

namespace {

// Images/s of the training loader (full augmentation) at the configured input size and workers.
double bench_loader(const Config& config, int batches, int batch_size) {
  data::ParseOptions po;
  po.class_names = config.data.classes;
  po.keep_difficult = config.data.train_difficult;
  po.skip_unknown_classes = config.data.skip_unknown_classes;
  auto ds = std::make_shared<const data::VocDataset>(data::load_voc(config.data.train, po));
  data::LoaderOptions lo;
  lo.batch_size = batch_size;
  lo.workers = config.data.workers;
  lo.prefetch = config.data.prefetch;
  lo.seed = config.runtime.seed;
  lo.train = true;
  lo.max_boxes = config.data.max_boxes;
  lo.augment = config.data.augment;
  lo.input_size = config.data.input_size;
  lo.num_batches = batches + 2;
  data::Loader loader(ds, lo);
  for (int i = 0; i < 2; ++i) loader.next();  // warm-up: threads started, caches filled
  const auto t0 = std::chrono::steady_clock::now();
  int64_t images = 0;
  while (auto b = loader.next()) images += b->images.size(0);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return images / s;
}

}  // namespace

void add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Measure speed (data loader)");
  auto flags = std::make_shared<ConfigFlags>();
  flags->add(cmd, true);
  auto batches = std::make_shared<int>(20);
  cmd->add_option("--batches", *batches, "Batches measured after warm-up")->capture_default_str();
  cmd->callback([=] {
    const Config config = flags->load();
    util::setup_runtime(config.runtime);
    const int bs = config.train.batch / config.train.subdivisions;
    const double ips = bench_loader(config, *batches, bs);
    std::cout << "loader: " << ips << " images/s at " << config.data.input_size << " px, batch " << bs
              << ", " << config.data.workers << " worker(s), full augmentation\n";
  });
}

}  // namespace yolo2::cli
