// Crash-safe directories: the one directory fsync and the one write-a-directory-then-rename of the
// code base (files: core/atomic_file.h). Checkpoints (trainer/checkpoint.cpp), exports
// (artifacts/artifact_dir.h), HF checkpoint and LoRA adapter folders (llm/) and the decision log's
// new files (serve/decision_log.cpp) all go through these.
#pragma once

#include <string>

namespace conductor {

// ".tmp.<pid>.<random hex>": a suffix for a temporary name beside a final one that no other writer
// (thread or process) picks at the same time. AtomicOutput and AtomicDirectory use it.
std::string unique_temp_suffix();

// fsync(2) of a directory, so that a rename or a new name in it survives a crash; "" is the current
// directory. Best effort: a directory that cannot be opened (or a file system without directory
// fsync) is not an error, as the data itself was already synced.
void fsync_directory(const std::string& dir);

// A directory written under a temporary name beside its final path and renamed into place, so a
// reader (or a crash) never sees a half-written one.
class AtomicDirectory {
 public:
  // Throws conductor::Error if `final_dir` exists and `overwrite` is false, or its parent is missing.
  // `temp_dir`: where to write (a name that stale-temporary sweeps recognise); default: a unique
  // sibling `<final_dir>.tmp.<pid>.<hex>`. An existing `temp_dir` is removed first, and with
  // `temp_dir` an overwritten directory is set aside as `<temp_dir>.old`.
  AtomicDirectory(std::string final_dir, bool overwrite, std::string temp_dir = {});
  ~AtomicDirectory();  // removes the temporary directory unless committed
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  const std::string& path() const { return temp_; }  // write the files here
  const std::string& final_path() const { return final_; }
  // Renames the temporary directory to the final path and syncs the parent directory. With
  // overwrite, an existing directory is first renamed aside and removed after the new one is in place.
  void commit();

 private:
  std::string final_, temp_;
  bool overwrite_, committed_ = false, explicit_temp_ = false;
};

}  // namespace conductor
