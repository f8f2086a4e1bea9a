#include "core/atomic_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <sstream>

#include "core/error.h"

namespace conductor {

namespace fs = std::filesystem;

std::string unique_temp_suffix() {
  static thread_local std::mt19937_64 gen(std::random_device{}() ^ static_cast<uint64_t>(getpid()));
  std::ostringstream os;
  os << ".tmp." << getpid() << "." << std::hex << gen();
  return os.str();
}

void fsync_directory(const std::string& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

AtomicDirectory::AtomicDirectory(std::string final_dir, bool overwrite, std::string temp_dir)
    : final_(fs::path(std::move(final_dir)).lexically_normal().string()), overwrite_(overwrite) {
  while (final_.size() > 1 && final_.back() == '/') final_.pop_back();
  const fs::path parent = fs::path(final_).parent_path();
  if (!parent.empty() && !fs::is_directory(parent))
    fail("cannot write '", final_, "': directory '", parent.string(), "' does not exist");
  if (fs::exists(final_) && !overwrite_) fail("'", final_, "' already exists (set overwrite, the --overwrite flag of the command line, to replace it)");
  std::error_code ec;
  if (temp_dir.empty()) {
    temp_ = final_ + unique_temp_suffix();
  } else {
    temp_ = std::move(temp_dir);
    explicit_temp_ = true;
    fs::remove_all(temp_, ec);  // a stale one from an interrupted run
  }
  fs::create_directory(temp_, ec);
  if (ec) fail("cannot create directory '", temp_, "': ", ec.message());
}

AtomicDirectory::~AtomicDirectory() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(temp_, ec);
  }
}

void AtomicDirectory::commit() {
  if (committed_) return;
  std::error_code ec;
  std::string aside;
  if (fs::exists(final_)) {
    if (!overwrite_) fail("'", final_, "' already exists");
    // Beside the temporary directory's name when it was given, so the same sweeps find it.
    aside = explicit_temp_ ? temp_ + ".old" : final_ + ".old" + unique_temp_suffix();
    if (explicit_temp_) fs::remove_all(aside, ec);
    fs::rename(final_, aside, ec);
    if (ec) fail("cannot move '", final_, "' aside: ", ec.message());
  }
  fs::rename(temp_, final_, ec);
  if (ec) fail("cannot rename '", temp_, "' to '", final_, "': ", ec.message());
  committed_ = true;
  fsync_directory(fs::path(final_).parent_path().string());
  if (!aside.empty()) fs::remove_all(aside, ec);
}

}  // namespace conductor
