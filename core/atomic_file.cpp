#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/atomic_dir.h"
#include "core/error.h"

namespace conductor {

namespace {
void fsync_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
}  // namespace

AtomicOutput::AtomicOutput(std::string final_path)
    : final_path_(std::move(final_path)), temp_path_(final_path_ + unique_temp_suffix()) {
  auto parent = std::filesystem::path(final_path_).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent))
    fail("cannot write '", final_path_, "': directory '", parent.string(), "' does not exist");
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) std::remove(temp_path_.c_str());
}

void AtomicOutput::commit() {
  if (committed_) return;
  fsync_file(temp_path_);
  if (std::rename(temp_path_.c_str(), final_path_.c_str()) != 0)
    fail("cannot rename '", temp_path_, "' to '", final_path_, "': ", std::strerror(errno));
  fsync_directory(std::filesystem::path(final_path_).parent_path().string());
  committed_ = true;
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  AtomicOutput out(path);
  {
    std::ofstream f(out.temp_path(), std::ios::binary | std::ios::trunc);
    if (!f) fail("cannot open '", out.temp_path(), "' for writing: ", std::strerror(errno));
    f.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    f.flush();
    if (!f) fail("write to '", out.temp_path(), "' failed: ", std::strerror(errno));
  }
  out.commit();
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open '", path, "': ", std::strerror(errno));
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) fail("cannot create directory '", path, "': ", ec.message());
}

}  // namespace conductor
