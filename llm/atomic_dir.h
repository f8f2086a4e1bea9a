// A directory written under a temporary name beside its final path and renamed into place, so a
// reader (or a crash) never sees a half-written checkpoint.
#pragma once

#include <string>

namespace conductor::llm {

class AtomicDirectory {
 public:
  // Throws conductor::Error if `final_dir` exists and `overwrite` is false, or its parent is missing.
  AtomicDirectory(std::string final_dir, bool overwrite);
  ~AtomicDirectory();  // removes the temporary directory unless committed
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  const std::string& path() const { return temp_; }  // write the files here
  const std::string& final_path() const { return final_; }
  // Renames the temporary directory to the final path. With overwrite, an existing directory is
  // first renamed aside and removed after the new one is in place.
  void commit();

 private:
  std::string final_, temp_;
  bool overwrite_, committed_ = false;
};

}  // namespace conductor::llm
