// `yolo2 config`: print the resolved config, or the reference of every key.
#include <iostream>

#include "verbs.hpp"
#include "yolo2/runtime/setup.hpp"

namespace yolo2::cli {

void ConfigFlags::add(CLI::App* cmd, bool required) {
  auto* opt = cmd->add_option("-c,--config", path, "YAML config file");
  if (required) opt->required();
  opt->check(CLI::ExistingFile);
  cmd->add_option("--set", overrides, "Override a key: section.key=value (repeatable)")->allow_extra_args(false);
}

Config ConfigFlags::load() const {
  if (path.empty()) return parse_config("", "defaults", overrides);
  return load_config(path, overrides);
}

void add_config(CLI::App& app) {
  auto* cmd = app.add_subcommand("config", "Print the resolved config (defaults + file + --set) or the key reference");
  auto flags = std::make_shared<ConfigFlags>();
  flags->add(cmd, false);
  auto reference = std::make_shared<bool>(false);
  cmd->add_flag("--reference", *reference, "Print every key with its type, default and meaning (Markdown)");
  cmd->callback([flags, reference] {
    if (*reference) {
      std::cout << "| key | type | default | meaning |\n|---|---|---|---|\n";
      for (const auto& k : config_keys())
        std::cout << "| `" << k.path << "` | " << k.type << " | `" << k.default_value << "` | " << k.doc << " |\n";
      return;
    }
    std::cout << to_yaml(flags->load());
  });
}

}  // namespace yolo2::cli
