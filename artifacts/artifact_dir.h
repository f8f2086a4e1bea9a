// Verified artifact directories: a manifest.json that lists every other file with its size and
// SHA-256, written atomically and refused on read when anything does not match. The export of a
// trained policy (policies/export.h) is one.
//
//   DIR/manifest.json   {"format": NAME, "format_version": N, ..., "files": {name: {"sha256", "bytes"}}}
//   DIR/<file>          every file listed; no other file may be present
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/json_util.h"

namespace conductor {

struct ArtifactFile {
  std::string name;   // a plain file name (no '/')
  std::string bytes;
  std::string path;   // when non-empty: a file to move (or copy) in instead of `bytes`
};

// True when `dir` holds a manifest.json whose "format" is `format` (contents not verified).
bool is_artifact_dir(const std::string& dir, const std::string& format);

// Writes `files` and `manifest` (with "files" filled in) into a temporary sibling of `dir`, calls
// `validate(temp_dir)` on it (which throws to abort), then renames it into place. An existing `dir`
// is replaced only with `overwrite` and when it is an artifact directory of the same format;
// otherwise conductor::Error says why. Returns the manifest as written.
json write_artifact_dir(const std::string& dir, json manifest, const std::vector<ArtifactFile>& files,
                        bool overwrite, const std::function<void(const std::string&)>& validate = nullptr);

// Checks the manifest's format name and version (refusing others with `hint`, e.g. how to make one),
// that every file of the directory is listed, and every listed file's size and SHA-256. Returns the
// manifest. Throws conductor::Error naming the file at fault.
json verify_artifact_dir(const std::string& dir, const std::string& format, int format_version,
                         const std::string& hint);

}  // namespace conductor
