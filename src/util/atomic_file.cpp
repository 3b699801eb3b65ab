#include "yolo2/util/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "yolo2/error.hpp"

namespace yolo2::util {

namespace {
constexpr const char* kTempMarker = ".tmp";
}  // namespace

namespace {

// The content in a temporary beside `path`, flushed and fsynced; its name. A failure removes the
// temporary and throws naming `path`.
std::string write_temporary(const std::string& path, const std::function<void(const ByteSink&)>& produce) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir.string() + ": cannot create folder: " + ec.message());
  const std::string tmp = temporary_name(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error(path + ": cannot create its temporary file " + tmp + ": " + std::strerror(errno));
  try {
    produce([&](const void* data, std::size_t size) {
      if (size && std::fwrite(data, 1, size, f) != size)
        throw Error(path + ": write failed (disk full?): " + std::strerror(errno));
    });
    if (std::fflush(f) != 0) throw Error(path + ": flush failed (disk full?): " + std::strerror(errno));
    if (::fsync(::fileno(f)) != 0) throw Error(path + ": fsync failed: " + std::strerror(errno));
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": close failed: " + std::strerror(errno));
  }
  return tmp;
}

// Renames the temporary over `path` and makes the rename durable (fsync of the folder).
void commit(const std::string& tmp, const std::string& path) {
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error(path + ": cannot rename the temporary file into place: " + reason);
  }
  const std::filesystem::path target(path);
  const std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace

void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& produce) {
  commit(write_temporary(path, produce), path);
}

void check_writable(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a folder, not a file name");
  // An empty temporary, created and removed: the folder (made as the write would make it) takes files.
  std::remove(write_temporary(path, [](const ByteSink&) {}).c_str());
}

void write_files_atomic(const std::vector<PendingWrite>& files) {
  std::vector<std::string> temporaries;
  try {
    for (const auto& f : files) temporaries.push_back(write_temporary(f.path, f.produce));
  } catch (...) {
    for (const auto& t : temporaries) std::remove(t.c_str());
    throw;
  }
  for (std::size_t k = 0; k < files.size(); ++k) commit(temporaries[k], files[k].path);
}

void write_file_atomic(const std::string& path, const std::string& content) {
  write_file_atomic(path, [&](const ByteSink& sink) { sink(content.data(), content.size()); });
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read: " + std::strerror(errno));
  try {  // libstdc++'s file buffer throws a nameless ios_base::failure when read(2) fails (EIO, ...)
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } catch (const std::ios_base::failure&) {
    const int err = errno;
    throw Error(path + ": cannot read: " + (err != 0 ? std::strerror(err) : "read error"));
  }
}

std::string temporary_name(const std::string& path) {
  const std::filesystem::path target(path);
  const std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  return (dir / ("." + target.filename().string() + kTempMarker + std::to_string(::getpid()) + "-" +
                 std::to_string(std::random_device{}())))
      .string();
}

bool is_temporary_of(const std::string& filename, const std::string& target_name) {
  const std::string head = "." + target_name + kTempMarker;
  if (filename.compare(0, head.size(), head) != 0) return false;
  const std::string rest = filename.substr(head.size());  // <pid>-<random>
  const auto dash = rest.find('-');
  const auto digits = [](const std::string& t) {
    return !t.empty() && t.find_first_not_of("0123456789") == std::string::npos;
  };
  return dash != std::string::npos && digits(rest.substr(0, dash)) && digits(rest.substr(dash + 1));
}

int remove_stale_temporaries(const std::string& dir, const std::vector<std::string>& names) {
  namespace fs = std::filesystem;
  int removed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    for (const auto& target : names)
      if (is_temporary_of(name, target) && e.is_regular_file()) {
        fs::remove(e.path(), ec);
        removed += !ec;
        break;
      }
  }
  return removed;
}

}  // namespace yolo2::util
