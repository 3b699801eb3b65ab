// yolo2_fuzz_replay ROOT...: every file in ROOT/<target>/ (the committed seed corpus, and the inputs
// that once broke a parser, kept as regressions) through that fuzz target, built without sanitizers
// by the project's compiler; ctest runs it. Fails on an input that takes over 5 s (libFuzzer's own
// limit, in scripts/fuzz.sh, is 1 s on an idle core); a crash or an exception other than
// yolo2::Error ends the process, after the input's name was printed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "targets.hpp"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s ROOT... (each ROOT holds one folder per target)\n", argv[0]);
    return 2;
  }
  int inputs = 0, refused = 0, slow = 0;
  for (int a = 1; a < argc; ++a)
    for (const auto& target : yolo2::fuzz::targets()) {
      const fs::path dir = fs::path(argv[a]) / target.name;
      if (!fs::is_directory(dir)) continue;
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file()) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        std::printf("%s %s\n", target.name, f.string().c_str());
        std::fflush(stdout);
        std::ifstream in(f, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const auto t0 = std::chrono::steady_clock::now();
        const bool ok = yolo2::fuzz::run_one(target, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ++inputs;
        refused += ok ? 0 : 1;
        if (s > 5.0) {
          ++slow;
          std::printf("  too slow: %.1f s\n", s);
        }
      }
    }
  std::printf("replayed %d inputs (%d refused with a named error), %d too slow\n", inputs, refused, slow);
  return inputs == 0 || slow > 0 ? 1 : 0;
}
