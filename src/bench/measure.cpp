#include "measure.hpp"

#include <ATen/ATen.h>
#include <sys/resource.h>
#include <torch/cuda.h>
#include <opencv2/imgcodecs.hpp>

#include <fstream>
#include <string>

#include "yolo2/data/augment.hpp"
#include "yolo2/data/dataset.hpp"
#include "yolo2/data/image_io.hpp"
#include "yolo2/data/loader.hpp"
#include "yolo2/error.hpp"
#include "yolo2/eval/voc_ap.hpp"
#include "yolo2/loss/region_loss.hpp"
#include "yolo2/model/yolov2.hpp"
#include "yolo2/options.hpp"
#include "yolo2/train/optimizer.hpp"
#include "yolo2/train/tasks.hpp"
#include "yolo2/train/trainer.hpp"
#include "yolo2/util/atomic_file.hpp"
#include "yolo2/util/cuda_memory.hpp"
#include "yolo2/util/rng.hpp"

namespace yolo2::bench {

void Target::sync() const {
  if (cuda()) torch::cuda::synchronize(device.index());
}

// On a GPU the convolution runs in the precision's type (autocast), as the network's do; on the CPU
// in fp32, as the inference plan does.
ConvReference reference_conv(int repeats, bool channels_last, const Target& target) {
  const runtime::PrecisionPlan plan = target.cuda() ? target.plan : runtime::PrecisionPlan{};
  const auto fmt = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  const auto on = at::TensorOptions().device(target.device);
  at::Tensor x = at::rand({8, 256, 52, 52}, on).contiguous(fmt).requires_grad_(true);
  at::Tensor w = (at::randn({256, 256, 3, 3}, on) * 0.02).contiguous(fmt).requires_grad_(true);
  const double flop = 2.0 * 8 * 256 * 256 * 9 * 52 * 52 / 1e9;
  at::Tensor y;
  const double tf = median_seconds(1, repeats, [&] {
    at::NoGradGuard g;
    runtime::AutocastScope autocast(plan, target.device.type());
    y = at::conv2d(x, w, {}, 1, 1);
    target.sync();
  });
  const at::Tensor gy = at::rand_like(y);
  const double tb = median_seconds(1, repeats, [&] {
    at::Tensor out;
    {
      runtime::AutocastScope autocast(plan, target.device.type());
      out = at::conv2d(x, w, {}, 1, 1);
    }
    x.mutable_grad() = at::Tensor();
    w.mutable_grad() = at::Tensor();
    out.backward(gy);
    target.sync();
  });
  // tb timed forward + backward; the backward alone is the difference.
  ConvReference r;
  r.forward = flop / tf;
  r.backward = 2 * flop / std::max(tb - tf, 1e-9);
  r.both = 3 * flop / tb;
  return r;
}

void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

double peak_rss_mib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

namespace {

// b images of m random boxes each, as the loader would give them.
struct Targets {
  at::Tensor boxes, labels, counts;
};
Targets random_targets(int b, int m, int classes) {
  util::Rng rng(3);
  Targets t{at::zeros({b, m, 4}), at::full({b, m}, -1, at::kLong), at::full({b}, m, at::kLong)};
  for (int i = 0; i < b; ++i)
    for (int k = 0; k < m; ++k) {
      const double cx = rng.uniform(0.1, 0.9), cy = rng.uniform(0.1, 0.9), w = rng.uniform(0.05, 0.4),
                   h = rng.uniform(0.05, 0.4);
      t.boxes[i][k] = at::tensor({cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2}, at::kFloat).clamp(0, 1);
      t.labels[i][k] = rng.uniform_int(0, classes - 1);
    }
  return t;
}

double median_without_warmup(std::vector<double> v) {
  v.erase(v.begin());
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The step's parts as run_task builds them, on a stream that gives one fixed batch of random pixels
// and boxes (on the host as the loader gives them: float NCHW on the CPU, bytes NHWC for a GPU),
// past burn-in and the warm-up term, one micro-batch per step.
train::TrainerParts step_parts(const Config& config, int steps, bool channels_last, const Target& target) {
  train::TrainerParts p;
  p.config = config;
  const int b = config.train.batch / config.train.subdivisions, s = config.data.input_size;
  const int classes = static_cast<int>(config.data.classes.size());
  p.config.train.batch = b, p.config.train.subdivisions = 1;
  p.config.runtime.channels_last = channels_last;
  p.state.iteration = config.train.burn_in;
  p.state.images_seen = config.loss.warmup_images;
  p.config.train.epochs = 0, p.config.train.max_batches = p.state.iteration + steps + 1;
  p.device = target.device;
  p.precision = target.plan;
  p.net = model::YoloV2(model::yolov2_spec(config.model, classes));
  p.net->to(target.device);
  model::set_weight_memory_format(*p.net,
                                  channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
  p.net->train();
  p.optimizer = train::make_optimizer(*p.net, p.config.train);
  const Targets t = random_targets(b, 6, classes);
  data::Batch batch;
  batch.size = s;
  batch.images = target.cuda() ? at::randint(0, 256, {b, s, s, 3}, at::kByte) : at::rand({b, 3, s, s});
  batch.boxes = t.boxes, batch.labels = t.labels, batch.counts = t.counts;
  p.task = train::detection_task_on(
      [batch](int64_t k) {
        data::Batch x = batch;
        x.index = k;
        return x;
      },
      b);
  p.task->load(p.config, false);
  p.task->prepare(p);
  return p;
}

}  // namespace

TrainStep train_step(const Config& config, int repeats, bool channels_last, const Target& target) {
  // The warm-up step, `repeats` timed back to back (GPU), and `repeats` timed phase by phase.
  train::Trainer trainer(step_parts(config, 2 * repeats + 1, channels_last, target));
  trainer.parts().task->open(trainer);
  const int b = trainer.config().train.batch;
  std::vector<double> phase[4];
  bool phases = false;
  Clock::time_point t0;
  trainer.set_phase_probe([&](train::Trainer::Phase ph) {
    if (!phases) return;
    target.sync();
    const auto now = Clock::now();
    phase[static_cast<int>(ph)].push_back(std::chrono::duration<double, std::milli>(now - t0).count());
    t0 = now;
  });
  const auto step = [&](bool timed) {
    phases = timed;
    t0 = Clock::now();
    trainer.run_step();
  };
  TrainStep r;
  step(true);  // warm-up (cuDNN's algorithm searches); its phases are left out of the medians
  if (target.cuda()) util::reset_cuda_peak_memory(target.device.index());
  double secs = 0;
  if (!target.cuda()) {  // the CPU runs the phases synchronously: the same steps give both figures
    secs = median_seconds(0, repeats, [&] { step(true); });
  } else {  // back to back with one wait at the end, as a training loop runs them; then phase by phase
    const auto start = Clock::now();
    for (int i = 0; i < repeats; ++i) step(false);
    target.sync();
    secs = std::chrono::duration<double>(Clock::now() - start).count() / repeats;
    for (int i = 0; i < repeats; ++i) step(true);
  }
  r.images_per_s = b / secs;
  r.forward_ms = median_without_warmup(phase[0]), r.loss_ms = median_without_warmup(phase[1]);
  r.backward_ms = median_without_warmup(phase[2]), r.step_ms = median_without_warmup(phase[3]);
  if (target.cuda()) r.peak_gpu_mib = util::cuda_peak_memory_mib(target.device.index());
  return r;
}

double loader_rate(const Config& config, int batches, bool cached) {
  auto ds = std::make_shared<const data::Dataset>(data::load_dataset(config.data.train, parse_options(config, true)));
  data::LoaderOptions lo = loader_options(config, true);
  if (cached) {  // fill the cache with one pass over the set (the first epoch's decoding is not timed)
    lo.cache = std::make_shared<data::ImageCache>(ds->images.size());
    data::LoaderOptions fill = lo;
    fill.train = false;
    fill.batch_size = 1;
    data::Loader all(ds, fill);
    while (all.next()) {}
  }
  lo.num_batches = batches + 2;
  data::Loader loader(ds, lo);
  for (int i = 0; i < 2; ++i) loader.next();  // warm-up: threads started, caches filled
  const auto t0 = Clock::now();
  int64_t images = 0;
  while (auto b = loader.next()) images += b->images.size(0);
  return static_cast<double>(images) / std::chrono::duration<double>(Clock::now() - t0).count();
}

LoaderStages loader_stages(const Config& config) {
  const data::Dataset ds = data::load_dataset(config.data.train, parse_options(config, true));
  const int n = std::min<int>(64, static_cast<int>(ds.images.size()));
  const int s = config.data.input_size;
  std::vector<double> passes[6];
  for (int pass = 0; pass < 3; ++pass) {
    double t[6] = {0, 0, 0, 0, 0, 0};
    std::vector<float> f(static_cast<std::size_t>(3 * s * s));
    std::vector<uint8_t> b(static_cast<std::size_t>(3 * s * s));
    for (int i = 0; i < n; ++i) {
      const data::ImageRecord& rec = ds.images[static_cast<std::size_t>(i)];
      auto t0 = Clock::now();
      const auto lap = [&](int k) {
        const auto now = Clock::now();
        t[k] += std::chrono::duration<double, std::milli>(now - t0).count();
        t0 = now;
      };
      const std::string bytes = util::read_file(rec.image_path);
      lap(0);
      const cv::Mat image = data::decode_image(rec.image_path, bytes);  // the loader's decode, checks included
      lap(1);
      util::Rng rng(static_cast<uint64_t>(i + 1000 * pass));
      const data::AugmentDraw d = data::draw_augment(image.cols, image.rows, s, config.data.augment, rng);
      cv::Mat sized = data::warp_image(image, d.affine, s, config.data.augment.jitter_mode == JitterMode::Crop);
      lap(2);
      data::distort_hsv(sized, d.dhue, d.dsat, d.dexp, config.data.augment.hsv);
      lap(3);
      data::pack_image(sized, f.data());
      lap(4);
      data::pack_image_bytes(sized, b.data());
      lap(5);
    }
    for (int k = 0; k < 6; ++k) passes[k].push_back(t[k] / n);
  }
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  LoaderStages r;
  r.images = n;
  r.read = median(passes[0]), r.decode = median(passes[1]), r.warp = median(passes[2]);
  r.colour = median(passes[3]), r.pack_float = median(passes[4]), r.pack_bytes = median(passes[5]);
  return r;
}

double voc_scoring_seconds(const Config& config, int repeats) {
  util::Rng rng(7);
  const int images = 5000, classes = static_cast<int>(config.data.classes.size());
  std::vector<std::vector<eval::GroundTruthBox>> gt(images);
  std::vector<eval::Detection> dets;
  for (int i = 0; i < images; ++i)
    for (int k = 0; k < 3; ++k) {
      const auto x = static_cast<float>(rng.uniform(0, 400)), y = static_cast<float>(rng.uniform(0, 300));
      gt[static_cast<std::size_t>(i)].push_back(
          {static_cast<int>(rng.uniform_int(0, classes - 1)), {x, y, x + 60, y + 60}, rng.bernoulli(0.1)});
    }
  for (int d = 0; d < 100000; ++d) {
    const auto& g = gt[static_cast<std::size_t>(rng.uniform_int(0, images - 1))];
    const auto& t = g[static_cast<std::size_t>(rng.uniform_int(0, 2))];
    const auto j = static_cast<float>(rng.uniform(-15, 15));
    eval::Detection det;
    det.image = static_cast<int>(&g - gt.data());
    det.label = rng.bernoulli(0.7) ? t.label : static_cast<int>(rng.uniform_int(0, classes - 1));
    det.score = static_cast<float>(rng.uniform());
    det.box = {t.box.x1 + j, t.box.y1 - j, t.box.x2 + j, t.box.y2 + j};
    dets.push_back(det);
  }
  return median_seconds(1, repeats, [&] { eval::evaluate_voc(gt, dets, config.data.classes); });
}

}  // namespace yolo2::bench
