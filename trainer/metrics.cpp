#include "trainer/metrics.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/json_util.h"
#include "trainer/crc32c.h"

namespace conductor {

void Metrics::set(const std::string& name, double v) {
  for (auto& kv : values)
    if (kv.first == name) {
      kv.second = v;
      return;
    }
  values.emplace_back(name, v);
}

double Metrics::get(const std::string& name) const {
  for (const auto& kv : values)
    if (kv.first == name) return kv.second;
  return std::nan("");
}

bool Metrics::has(const std::string& name) const {
  for (const auto& kv : values)
    if (kv.first == name) return true;
  return false;
}

// ---- JSONL ----

JsonlSink::JsonlSink(const std::string& path, uint64_t resume_offset) : path_(path) {
  namespace fs = std::filesystem;
  if (resume_offset > 0) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec || size < resume_offset)
      fail(path, ": has ", ec ? 0 : size, " bytes but the checkpoint recorded ", resume_offset,
           "; the run folder was modified after the checkpoint");
    fs::resize_file(path, resume_offset, ec);
    if (ec) fail(path, ": cannot truncate to ", resume_offset, " bytes: ", ec.message());
  } else {
    std::error_code ec;
    fs::remove(path, ec);
  }
  f_ = std::fopen(path.c_str(), "ab");
  if (!f_) fail(path, ": cannot open for writing: ", std::strerror(errno));
  bytes_ = resume_offset;
}

JsonlSink::~JsonlSink() {
  if (f_) std::fclose(f_);
}

void JsonlSink::write(const Metrics& m) {
  json j = json::object();
  j["update"] = m.update;
  j["global_step"] = m.global_step;
  for (const auto& kv : m.values) {
    if (kv.first.rfind("time/", 0) == 0) continue;  // wall-clock: not reproducible
    j[kv.first] = std::isfinite(kv.second) ? json(kv.second) : json(nullptr);
  }
  const std::string line = j.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), f_) != line.size())
    fail(path_, ": write failed: ", std::strerror(errno));
  bytes_ += line.size();
  flush();  // one line per update: readers (tail -f, dashboards) see whole lines
}

void JsonlSink::flush() {
  if (std::fflush(f_) != 0) fail(path_, ": flush failed: ", std::strerror(errno));
}

// ---- TensorBoard ----

namespace {
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_fixed64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_fixed32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_bytes_field(std::string& out, int field, const std::string& bytes) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | 2);
  put_varint(out, bytes.size());
  out += bytes;
}
void put_double_field(std::string& out, int field, double v) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | 1);
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  put_fixed64(out, bits);
}
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

std::string TensorBoardSink::record(const std::string& data) {
  std::string out;
  std::string len;
  put_fixed64(len, data.size());
  out += len;
  put_fixed32(out, masked_crc32c(len.data(), len.size()));
  out += data;
  put_fixed32(out, masked_crc32c(data.data(), data.size()));
  return out;
}

// tensorflow/core/util/event.proto: Event{double wall_time = 1; int64 step = 2;
// oneof what {string file_version = 3; Summary summary = 5;}}; summary.proto: Summary{repeated
// Value value = 1}, Value{string tag = 1; float simple_value = 2}.
std::string TensorBoardSink::scalar_event(double wall_time, int64_t step,
                                          const std::vector<std::pair<std::string, float>>& values) {
  std::string summary;
  for (const auto& kv : values) {
    std::string value;
    put_bytes_field(value, 1, kv.first);
    put_varint(value, (2 << 3) | 5);
    uint32_t bits;
    std::memcpy(&bits, &kv.second, 4);
    put_fixed32(value, bits);
    put_bytes_field(summary, 1, value);
  }
  std::string ev;
  put_double_field(ev, 1, wall_time);
  put_varint(ev, (2 << 3) | 0);
  put_varint(ev, static_cast<uint64_t>(step));
  put_bytes_field(ev, 5, summary);
  return ev;
}

std::string TensorBoardSink::file_version_event(double wall_time) {
  std::string ev;
  put_double_field(ev, 1, wall_time);
  put_bytes_field(ev, 3, "brain.Event:2");
  return ev;
}

TensorBoardSink::TensorBoardSink(const std::string& dir) {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "localhost");
  const double t = now_seconds();
  // pid and a per-process counter keep files of runs started within one second apart.
  static std::atomic<int> counter{0};
  path_ = dir + "/events.out.tfevents." + std::to_string(static_cast<int64_t>(t)) + "." + host + "." +
          std::to_string(getpid()) + "." + std::to_string(counter.fetch_add(1)) + ".conductor";
  f_ = std::fopen(path_.c_str(), "wb");
  if (!f_) fail(path_, ": cannot open for writing: ", std::strerror(errno));
  const std::string rec = record(file_version_event(t));
  std::fwrite(rec.data(), 1, rec.size(), f_);
  std::fflush(f_);
}

TensorBoardSink::~TensorBoardSink() {
  if (f_) std::fclose(f_);
}

void TensorBoardSink::write(const Metrics& m) {
  std::vector<std::pair<std::string, float>> vals;
  for (const auto& kv : m.values)
    if (std::isfinite(kv.second)) vals.emplace_back(kv.first, static_cast<float>(kv.second));
  if (vals.empty()) return;
  const std::string rec = record(scalar_event(now_seconds(), m.global_step, vals));
  if (std::fwrite(rec.data(), 1, rec.size(), f_) != rec.size())
    fail(path_, ": write failed: ", std::strerror(errno));
}

void TensorBoardSink::flush() { std::fflush(f_); }

// ---- Console ----

ConsoleSink::ConsoleSink(int64_t total_steps, int64_t num_updates, int every)
    : total_steps_(total_steps), num_updates_(num_updates), every_(std::max(1, every)),
      tty_(isatty(STDERR_FILENO) != 0) {}

namespace {
std::string fmt_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", long(t / 3600), long((t / 60) % 60));
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", long(t / 60), long(t % 60));
  else std::snprintf(buf, sizeof buf, "%lds", long(t));
  return buf;
}
}  // namespace

void ConsoleSink::write(const Metrics& m) {
  if (m.update == 0) return;  // warm start metrics: the trainer prints its own line
  const bool last = m.update >= num_updates_;
  if (!tty_ && !last && m.update % every_ != 0) return;
  char buf[512];
  const double sps = m.get("time/steps_per_s");
  const double remaining = sps > 0 ? (total_steps_ - m.global_step) / sps : NAN;
  int n = std::snprintf(buf, sizeof buf, "update %ld/%ld | steps %ld/%ld (%.0f%%) | %.0f steps/s | ETA %s",
                        long(m.update), long(num_updates_), long(m.global_step), long(total_steps_),
                        100.0 * m.global_step / std::max<int64_t>(1, total_steps_), sps,
                        fmt_duration(remaining).c_str());
  auto add = [&](const char* label, const char* key, const char* f) {
    const double v = m.get(key);
    if (std::isfinite(v) && n < static_cast<int>(sizeof buf) - 64) {
      n += std::snprintf(buf + n, sizeof buf - n, " | %s ", label);
      n += std::snprintf(buf + n, sizeof buf - n, f, v);
    }
  };
  add("return", "charts/episodic_return", "%.3f");
  add("quality", "charts/quality", "%.3f");
  add("cost", "charts/cost_usd", "%.5f");
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", buf);
    dirty_ = true;
    if (last) {
      std::fprintf(stderr, "\n");
      dirty_ = false;
    }
  } else {
    std::fprintf(stderr, "%s\n", buf);
  }
  std::fflush(stderr);
}

void ConsoleSink::flush() {
  if (dirty_) {
    std::fprintf(stderr, "\n");
    dirty_ = false;
  }
}

}  // namespace conductor
