// The README documents every config key with its current default (the table is printed by
// `yolo2 config --reference`); a key added or changed without the docs fails here.
#include <gtest/gtest.h>

#include "test_util.hpp"
#include "yolo2/config.hpp"

#ifdef YOLO2_SOURCE_DIR
TEST(Docs, ReadmeConfigReferenceListsEveryKeyWithItsDefault) {
  const std::string readme = yolo2::testing::read_text(std::string(YOLO2_SOURCE_DIR) + "/README.md");
  ASSERT_FALSE(readme.empty());
  for (const auto& k : yolo2::config_keys()) {
    const std::string row = "| `" + k.path + "` | " + k.type + " | `" + k.default_value + "` | " + k.doc + " |";
    EXPECT_NE(readme.find(row), std::string::npos) << "README.md lacks or has an outdated row for " << k.path
                                                   << " (regenerate the table with `yolo2 config --reference`)";
  }
}

TEST(Docs, ReadmeShowsTheTwoCommandsAndEveryVerb) {
  const std::string readme = yolo2::testing::read_text(std::string(YOLO2_SOURCE_DIR) + "/README.md");
  for (const char* s : {"scripts/demo.sh", "scripts/test.sh", "yolo2 synth", "yolo2 stats", "yolo2 config",
                        "yolo2 info", "yolo2 train", "yolo2 eval", "yolo2 detect", "yolo2 export", "yolo2 bench"})
    EXPECT_NE(readme.find(s), std::string::npos) << s;
}
#endif
