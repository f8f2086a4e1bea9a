// Write-then-rename output files: a reader (or a crash) never sees a half-written file.
#pragma once

#include <functional>
#include <string>

namespace conductor {

// Holds a temporary path next to `final_path`; commit() fsyncs and renames it into place.
// If the object is destroyed without commit() (an exception, an early return), the temporary
// file is removed and `final_path` is left exactly as it was.
class AtomicOutput {
 public:
  explicit AtomicOutput(std::string final_path);
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::string& temp_path() const { return temp_path_; }
  const std::string& final_path() const { return final_path_; }
  void commit();

 private:
  std::string final_path_;
  std::string temp_path_;
  bool committed_ = false;
};

// Writes `contents` to `path` atomically.
void write_file_atomic(const std::string& path, const std::string& contents);
// Reads a whole file; throws conductor::Error naming the path when it cannot.
std::string read_file(const std::string& path);
// Creates a directory and its parents; throws on failure.
void make_dirs(const std::string& path);

}  // namespace conductor
