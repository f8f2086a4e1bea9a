#include "artifacts/artifact_dir.h"

#include <filesystem>
#include <set>

#include "artifacts/sha256.h"
#include "core/atomic_dir.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace conductor {

namespace fs = std::filesystem;

namespace {

constexpr const char* kManifest = "manifest.json";

}  // namespace

bool is_artifact_dir(const std::string& dir, const std::string& format) {
  const fs::path m = fs::path(dir) / kManifest;
  if (!fs::is_regular_file(m)) return false;
  try {
    const json j = json::parse(read_file(m.string()));
    return j.is_object() && j.value("format", "") == format;
  } catch (const std::exception&) {
    return false;
  }
}

json write_artifact_dir(const std::string& dir, json manifest, const std::vector<ArtifactFile>& files,
                        bool overwrite, const std::function<void(const std::string&)>& validate) {
  if (dir.empty()) fail("export: the output directory is empty");
  const std::string format = manifest.value("format", "");
  const fs::path out = fs::absolute(dir).lexically_normal();
  const fs::path parent = out.parent_path();
  make_dirs(parent.string());
  if (fs::exists(out)) {
    if (!overwrite)
      fail("export: '", dir, "' already exists (pass --force to replace an earlier export, or choose another --out)");
    if (!is_artifact_dir(out.string(), format))
      fail("export: refusing to replace '", dir, "': it is not an export directory (no ", format, " manifest.json)");
  }
  AtomicDirectory staged(out.string(), /*overwrite=*/true);  // replacing was allowed above
  const std::string& tmp = staged.path();

  json listed = json::object();
  std::set<std::string> names;
  for (const auto& f : files) {
    if (f.name.empty() || f.name.find('/') != std::string::npos || f.name == kManifest || f.name == "." || f.name == "..")
      fail("export: invalid file name '", f.name, "'");
    if (!names.insert(f.name).second) fail("export: file '", f.name, "' appears twice");
    const std::string dst = tmp + "/" + f.name;
    if (f.path.empty()) {
      write_file_atomic(dst, f.bytes);
    } else {
      std::error_code ec;
      fs::rename(f.path, dst, ec);
      if (ec) {  // another file system: copy, then drop the source
        fs::copy_file(f.path, dst, fs::copy_options::overwrite_existing, ec);
        if (ec) fail("export: cannot copy '", f.path, "' into '", tmp, "': ", ec.message());
        fs::remove(f.path, ec);
      }
    }
    listed[f.name] = {{"sha256", sha256_file(dst)}, {"bytes", fs::file_size(dst)}};
  }
  manifest["files"] = listed;
  write_json_atomic(tmp + "/" + kManifest, manifest);
  if (validate) validate(tmp);

  staged.commit();
  return manifest;
}

json verify_artifact_dir(const std::string& dir, const std::string& format, int format_version,
                         const std::string& hint) {
  const fs::path root(dir);
  const fs::path mpath = root / kManifest;
  if (!fs::is_directory(root)) fail(dir, ": no such export directory");
  if (!fs::is_regular_file(mpath)) fail(dir, ": not an export directory (no manifest.json); ", hint);
  json m;
  try {
    m = json::parse(read_file(mpath.string()));
  } catch (const json::parse_error& e) {
    fail(mpath.string(), ": invalid JSON at byte ", e.byte);
  }
  if (!m.is_object() || m.value("format", "") != format)
    fail(mpath.string(), ": 'format' is not \"", format, "\": this is not a Conductor export");
  if (!m.contains("format_version") || !m["format_version"].is_number_integer())
    fail(mpath.string(), ": missing integer 'format_version'");
  const int version = m["format_version"].get<int>();
  if (version != format_version)
    fail(mpath.string(), ": format_version ", version, " is not supported (this build reads version ", format_version,
         version > format_version ? "; the export was written by a newer Conductor)" : ")");
  if (!m.contains("files") || !m["files"].is_object()) fail(mpath.string(), ": missing object 'files'");
  const json& files = m["files"];
  // Every file must be vouched for by the manifest, and match it.
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    if (name == kManifest) continue;
    if (!files.contains(name))
      fail(dir, ": file '", name, "' is not listed in manifest.json: refusing an export with unverified files");
  }
  for (const auto& [name, info] : files.items()) {
    const fs::path p = root / name;
    if (name.find('/') != std::string::npos || name == ".." || !fs::is_regular_file(p))
      fail(mpath.string(), ": lists '", name, "', which is missing from ", dir);
    if (!info.is_object() || !info.contains("sha256") || !info["sha256"].is_string() || !info.contains("bytes") ||
        !info["bytes"].is_number_unsigned())
      fail(mpath.string(), ": files['", name, "'] must be {\"sha256\": hex, \"bytes\": size}");
    const auto size = fs::file_size(p);
    if (size != info["bytes"].get<uint64_t>())
      fail(p.string(), ": size ", size, " bytes, but the manifest says ", info["bytes"].get<uint64_t>(),
           ": the export is damaged or was modified");
    const std::string sha = sha256_file(p.string());
    if (sha != info["sha256"].get<std::string>())
      fail(p.string(), ": sha256 ", sha, " does not match the manifest's ", info["sha256"].get<std::string>(),
           ": the export is damaged or was modified");
  }
  return m;
}

}  // namespace conductor
