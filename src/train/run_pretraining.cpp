// run_pretraining (`yolo2 pretrain`): the Darknet19 classifier on an ImageFolder dataset, through
// the same builder, loop and hooks as the detector; darknet's two stages (darknet19.cfg at the
// input size, then darknet19_448.cfg's fine-tune at a larger one) are one run; at the end the
// classifier is written in darknet's format with the detector prefix that train.init_weights takes.
#include <spdlog/spdlog.h>

#include "tasks.hpp"
#include "yolo2/model/darknet_io.hpp"
#include "yolo2/options.hpp"
#include "yolo2/train/schedule.hpp"

namespace yolo2::train {

namespace {

struct Classification {
  std::shared_ptr<const data::ImageFolderDataset> train_set;
  std::optional<data::ImageFolderDataset> val_set;

  void load(TrainerParts& p, bool evaluate) {
    Config& c = p.config;
    train_set = std::make_shared<const data::ImageFolderDataset>(
        data::load_image_folder(c.data.train, c.data.classes, "data.train", true));
    // data.classes empty: the class folders, sorted (torchvision's ImageFolder); stored in the run's
    // config.yaml and checkpoints from here on.
    if (c.data.classes.empty()) c.data.classes = train_set->class_names;
    if (evaluate) val_set = data::load_image_folder(c.data.test, c.data.classes, "data.test", false);
    spdlog::info("data: {} classes, {} training images, {} val images", c.data.classes.size(), train_set->size(),
                 val_set ? val_set->size() : 0);
    const int64_t main_stage = total_iterations(c.train, static_cast<int64_t>(train_set->size()));
    p.max_batches = main_stage + c.classify.finetune_batches;
    // darknet's poly (or the configured policy) over the main stage, then the fine-tune stage's own
    // poly from classify.finetune_lr, without burn-in.
    const TrainConfig stage1 = c.train;
    TrainConfig stage2 = c.train;
    stage2.lr = c.classify.finetune_lr, stage2.burn_in = 0, stage2.policy = LrPolicy::Poly;
    const int64_t ft = c.classify.finetune_batches;
    p.lr_at = [stage1, stage2, main_stage, ft](int64_t update) {
      return update <= main_stage ? learning_rate(stage1, update, main_stage)
                                  : learning_rate(stage2, update - main_stage, ft);
    };
  }

  std::unique_ptr<Hook> make_task(TrainerParts& p) {
    data::LoaderOptions o = loader_options(p.config, true);
    const int sub = p.config.train.subdivisions;
    const int64_t main_stage = p.max_batches - p.config.classify.finetune_batches;
    const int size = p.config.data.input_size, ft_size = p.config.classify.finetune_size;
    o.size_for_batch = [sub, main_stage, size, ft_size](int64_t b) { return b / sub < main_stage ? size : ft_size; };
    const ClassifyConfig& cc = p.config.classify;
    data::CropOptions ft{cc.finetune_min_crop, cc.finetune_max_crop, cc.aspect, cc.angle};
    p.task = classification_task(train_set, stream_options(p, o), data::crop_options(cc), ft, main_stage * sub);
    return classifier_evaluation_hook(std::move(val_set));
  }
};

// RUN/classifier.cfg + .weights (darknet's classifier predict, OpenCV's DNN) and the detector prefix
// RUN/backbone.conv.<N>, from the final weights (as darknet's `partial`, with seen = 0). Not darknet's
// own file names (darknet19.weights), so that yolo2 never takes a user's darknet file for its own.
void write_darknet_files(Trainer& t, TrainSummary&) {
  if (!t.main_rank()) return;
  TrainerParts& p = t.parts();
  const std::string base = p.folder.file("classifier");
  model::export_darknet(*p.net, p.config, base, static_cast<uint64_t>(p.state.images_seen));
  const int n = p.config.classify.prefix_layers;
  const std::string prefix = p.folder.file("backbone.conv." + std::to_string(n));
  model::save_darknet_weights(*p.net, prefix, 0, n);
  spdlog::info("pretrain: wrote {}.cfg, {}.weights and the detector prefix {} (train.init_weights)", base, base,
               prefix);
}

}  // namespace

TrainSummary run_pretraining(Config config, const TrainOptions& options) {
  auto c = std::make_shared<Classification>();
  TaskRecipe recipe;
  recipe.head = Head::Classifier;
  recipe.load_data = [c](TrainerParts& p, bool evaluate) { c->load(p, evaluate); };
  recipe.make_task = [c](TrainerParts& p) { return c->make_task(p); };
  recipe.finish = write_darknet_files;
  return run_recipe(std::move(config), options, recipe);
}

}  // namespace yolo2::train
