// Atomic file writes: write a temporary file in the same folder, flush and fsync it, then rename it
// over the target (and fsync the folder). A crash or a full disk mid-write leaves the previous
// file intact; readers never see a partial file.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace yolo2::util {

// `write(data, size)` appends bytes; `produce` calls it as often as it likes.
using ByteSink = std::function<void(const void* data, std::size_t size)>;
void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& produce);
void write_file_atomic(const std::string& path, const std::string& content);
// Throws now the error a later write_file_atomic(path) would meet for the place (a folder that
// cannot be made or takes no files, a path that is a folder), so that long work is not done for
// nothing; leaves no file (its folder is made, as the write would make it).
void check_writable(const std::string& path);

// Files that belong together (darknet's .cfg and .weights): every one is written to its temporary
// first; only when all are complete are they renamed into place. A failure (a full disk) leaves
// every earlier file as it was, so an earlier pair still matches.
struct PendingWrite {
  std::string path;
  std::function<void(const ByteSink&)> produce;
};
void write_files_atomic(const std::vector<PendingWrite>& files);

// The whole content of a file. Throws yolo2::Error "<path>: cannot read: <OS reason>".
std::string read_file(const std::string& path);

// The temporary name of a write to `path` by this process: "DIR/.NAME.tmp<pid>-<random>".
std::string temporary_name(const std::string& path);
// True when `filename` is the temporary of a write to `target_name` (the exact pattern above).
bool is_temporary_of(const std::string& filename, const std::string& target_name);
// Removes the temporaries that writes of the files `names` (in `dir`), interrupted by a kill, left
// behind; nothing else. Returns how many were removed.
int remove_stale_temporaries(const std::string& dir, const std::vector<std::string>& names);

}  // namespace yolo2::util
