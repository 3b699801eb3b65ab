// `yolo2 synth`: write the generated dataset (VOC, darknet or COCO form).
#include <spdlog/spdlog.h>

#include <iostream>

#include "verbs.hpp"
#include "yolo2/data/dataset.hpp"
#include "yolo2/data/synth.hpp"

namespace yolo2::cli {

void add_synth(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "synth",
      "Generate a VOC-format dataset of shapes (VOCdevkit layout), or with --classification an ImageFolder set");
  auto opt = std::make_shared<data::SynthOptions>();
  cmd->add_option("-o,--out", opt->out_dir, "Output folder (the VOC root)")->required();
  cmd->add_flag("--overwrite", opt->overwrite, "Replace a dataset synth wrote in --out (deletes only synth's files)");
  cmd->add_option("--train", opt->train, "Images in trainval")->capture_default_str();
  cmd->add_option("--test", opt->test, "Images in test")->capture_default_str();
  cmd->add_option("--size", opt->size, "Longest image side in pixels")->capture_default_str();
  cmd->add_option("--seed", opt->seed, "Random seed")->capture_default_str()->check(whole_number_from(0));
  cmd->add_option("--classes", opt->num_classes, "Number of shape classes (6-10)")->capture_default_str();
  cmd->add_option("--imbalance", opt->imbalance, "Most / least frequent class ratio")->capture_default_str();
  cmd->add_option("--max-objects", opt->max_objects, "Objects per image: 1..N")->capture_default_str();
  cmd->add_option("--min-object", opt->min_object, "Smallest object side in pixels")->capture_default_str();
  cmd->add_option("--clutter", opt->clutter,
                  "Background distractors (lines, specks, colour blobs): 0 none .. 2 twice the default")
      ->capture_default_str();
  cmd->add_option("--threads", opt->threads, "Writer threads (0: all cores)")->capture_default_str();
  auto format = std::make_shared<std::string>("voc");
  cmd->add_option("--format", *format,
                  "Dataset form: voc (VOCdevkit), darknet (images/, labels/, lists, obj.data, data.yaml; no "
                  "difficult objects) or coco (images/, annotations/instances_<split>.json; difficult as iscrowd)")
      ->capture_default_str()
      ->check(CLI::IsMember({"voc", "darknet", "coco"}));
  auto no_difficult = std::make_shared<bool>(false);
  cmd->add_flag("--no-difficult", *no_difficult,
                "Mark no object difficult (the darknet form's rule; the same data in VOC or COCO form then)");
  cmd->add_flag("--classification", opt->classification,
                "Write an ImageFolder classification set for `yolo2 pretrain` instead: OUT/train/<class>/*.jpg "
                "(--train images) and OUT/val/<class>/*.jpg (--test images), one shape per image, 14 classes "
                "unless --classes says otherwise (the detection shapes among them)");
  cmd->callback([opt, cmd, format, no_difficult] {
    if (opt->classification && cmd->count("--classes") == 0) opt->num_classes = 14;
    opt->format = *format == "darknet" ? DatasetFormat::Darknet
                  : *format == "coco"  ? DatasetFormat::Coco
                                       : DatasetFormat::Voc;
    opt->difficult = !*no_difficult;
    const data::SynthResult r = data::write_synth(*opt);
    if (opt->classification) {
      spdlog::info("synth: wrote {} classification images ({} classes; {} train, {} val) to {} in {:.2f} s",
                   r.images.size(), r.class_names.size(), opt->train, opt->test, opt->out_dir, r.seconds);
      return;
    }
    const int n = static_cast<int>(r.images.size());
    spdlog::info("synth: wrote {} images to {} in {:.2f} s ({:.0f} images/s)", n, opt->out_dir, r.seconds,
                 r.seconds > 0 ? n / r.seconds : 0.0);
    // Read it back through the same path as a real dataset of its form, and print its statistics.
    data::ParseOptions po;
    po.class_names = r.class_names;
    for (const char* split : {"trainval", "test"}) {
      if (std::string(split) == "test" && opt->test == 0) continue;
      const data::Dataset ds = data::load_dataset({{opt->out_dir, split}}, po);
      std::cout << "\n" << split << ":\n" << data::format_stats(ds, data::dataset_stats(ds), 10);
    }
  });
}

}  // namespace yolo2::cli
