// Atomic file writes: write a temporary file in the same folder, flush and fsync it, then rename it
// over the target (and fsync the folder). A crash or a full disk mid-write leaves the previous
// file intact; readers never see a partial file.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace yolo2::util {

// `write(data, size)` appends bytes; `produce` calls it as often as it likes.
using ByteSink = std::function<void(const void* data, std::size_t size)>;
void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& produce);
void write_file_atomic(const std::string& path, const std::string& content);

// Removes the temporary files that writes interrupted by a kill left in `dir` (".NAME.tmp*").
// Returns how many were removed.
int remove_stale_temporaries(const std::string& dir);

}  // namespace yolo2::util
