#include "serve/decision_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "core/atomic_dir.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/log.h"

namespace conductor::serve {

namespace fs = std::filesystem;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

DecisionLogConfig DecisionLogConfig::parse(ConfigReader r) {
  DecisionLogConfig c;
  c.dir = r.get<std::string>("dir", c.dir);
  c.rotate_bytes = r.get_in<int64_t>("rotate_bytes", c.rotate_bytes, 4096, int64_t(1) << 40);
  c.batch_rows = r.get_in<int>("batch_rows", c.batch_rows, 1, 1 << 24);
  c.queue_rows = r.get_in<int>("queue_rows", c.queue_rows, 1, 1 << 26);
  c.fsync_interval_s = r.get_in<double>("fsync_interval_s", c.fsync_interval_s, 0.0, 3600.0);
  c.log_query_text = r.get<bool>("log_query_text", c.log_query_text);
  c.remember_requests = r.get_in<int64_t>("remember_requests", c.remember_requests, 0, int64_t(1) << 32);
  r.finish();
  return c;
}

DecisionLog::DecisionLog(DecisionLogConfig config) : config_(std::move(config)) {
  if (config_.dir.empty()) fail("decision log: no directory given");
  std::error_code ec;
  fs::create_directories(config_.dir, ec);
  if (ec || !fs::is_directory(config_.dir))
    fail("decision log: cannot create the directory '", config_.dir, "': ", ec ? ec.message() : "not a directory");
  open_next_file();
  last_sync_ = now_s();
  writer_ = std::thread([this] { run(); });
}

DecisionLog::~DecisionLog() { close(); }

void DecisionLog::open_next_file() {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
    char name[128];
    std::snprintf(name, sizeof name, "decisions-%s-%d-%06llu.jsonl", stamp, static_cast<int>(::getpid()),
                  static_cast<unsigned long long>(seq_++));
    const std::string path = (fs::path(config_.dir) / name).string();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd < 0) fail("decision log: cannot create '", path, "': ", std::strerror(errno));
    fsync_directory(config_.dir);  // the new file's name survives a crash
    {
      std::lock_guard<std::mutex> lk(mu_);
      fd_ = fd;
      current_file_ = path;
    }
    file_bytes_ = 0;
    files_.fetch_add(1);
    return;
  }
  fail("decision log: cannot find a free file name in '", config_.dir, "'");
}

bool DecisionLog::append(std::string row) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ || static_cast<int>(queue_.size()) >= config_.queue_rows) {
      ++dropped_since_gap_;
      rows_dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queue_.push_back(std::move(row));
  }
  cv_.notify_one();
  return true;
}

void DecisionLog::sync_now() {
  if (fd_ >= 0 && unsynced_) {
    ::fdatasync(fd_);
    fsyncs_.fetch_add(1, std::memory_order_relaxed);
    unsynced_ = false;
  }
  last_sync_ = now_s();
}

void DecisionLog::write_batch(std::vector<std::string>& rows) {
  std::size_t total = 0;
  for (const auto& r : rows) total += r.size() + 1;
  if (file_bytes_ > 0 && file_bytes_ + static_cast<int64_t>(total) > config_.rotate_bytes) {
    sync_now();
    ::close(fd_);
    try {
      open_next_file();
    } catch (const Error& e) {
      log_error(e.what());
      fd_ = -1;
    }
  }
  std::string buf;
  buf.reserve(total);
  for (const auto& r : rows) {
    buf += r;
    buf += '\n';
  }
  std::size_t done = 0;
  bool ok = fd_ >= 0;
  while (ok && done < buf.size()) {
    const ssize_t n = ::write(fd_, buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (!ok) {
    write_errors_.fetch_add(1);
    rows_dropped_.fetch_add(rows.size());
    static std::atomic<int> warned{0};
    if (warned.fetch_add(1) < 5)
      log_error("decision log: write to '", current_file(), "' failed (", std::strerror(errno), "); ", rows.size(),
                " row(s) dropped");
    return;
  }
  file_bytes_ += static_cast<int64_t>(buf.size());
  bytes_.fetch_add(buf.size(), std::memory_order_relaxed);
  rows_written_.fetch_add(rows.size(), std::memory_order_relaxed);
  batches_.fetch_add(1, std::memory_order_relaxed);
  uint64_t m = max_batch_.load();
  while (rows.size() > m && !max_batch_.compare_exchange_weak(m, rows.size())) {
  }
  unsynced_ = true;
  if (config_.fsync_interval_s <= 0 || now_s() - last_sync_ >= config_.fsync_interval_s) sync_now();
}

void DecisionLog::run() {
  std::vector<std::string> batch;
  for (;;) {
    bool stopping;
    {
      std::unique_lock<std::mutex> lk(mu_);
      const auto wait = std::chrono::duration<double>(config_.fsync_interval_s > 0 ? config_.fsync_interval_s : 1.0);
      cv_.wait_for(lk, wait, [this] { return stop_ || !queue_.empty(); });
      stopping = stop_;
      const std::size_t take = std::min<std::size_t>(queue_.size(), static_cast<std::size_t>(config_.batch_rows));
      batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + take));
      queue_.erase(queue_.begin(), queue_.begin() + take);
      if (dropped_since_gap_ > 0) {
        batch.push_back(json{{"type", "log_gap"}, {"dropped", dropped_since_gap_}, {"timestamp_ms", unix_ms()}}.dump());
        dropped_since_gap_ = 0;
      }
    }
    if (!batch.empty()) write_batch(batch);
    else if (unsynced_ && now_s() - last_sync_ >= config_.fsync_interval_s) sync_now();
    batch.clear();
    if (stopping) {
      std::lock_guard<std::mutex> lk(mu_);
      if (queue_.empty()) break;
    }
  }
  sync_now();
  std::lock_guard<std::mutex> lk(mu_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void DecisionLog::close() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_one();
  if (writer_.joinable()) writer_.join();
}

std::string DecisionLog::current_file() const {
  std::lock_guard<std::mutex> lk(mu_);
  return current_file_;
}

DecisionLogStats DecisionLog::stats() const {
  DecisionLogStats s;
  s.rows_written = rows_written_.load();
  s.rows_dropped = rows_dropped_.load();
  s.batches = batches_.load();
  s.fsyncs = fsyncs_.load();
  s.bytes_written = bytes_.load();
  s.files = files_.load();
  s.write_errors = write_errors_.load();
  s.max_batch_rows = max_batch_.load();
  std::lock_guard<std::mutex> lk(mu_);
  s.queued = static_cast<int>(queue_.size());
  return s;
}

void RequestIndex::add(const std::string& id) {
  if (capacity_ <= 0) return;
  std::lock_guard<std::mutex> lk(mu_);
  if (!ids_.insert(id).second) return;
  order_.push_back(id);
  while (static_cast<int64_t>(order_.size()) > capacity_) {
    ids_.erase(order_.front());
    order_.pop_front();
  }
}

bool RequestIndex::contains(const std::string& id) const {
  std::lock_guard<std::mutex> lk(mu_);
  return ids_.count(id) > 0;
}

std::size_t RequestIndex::size() const {
  std::lock_guard<std::mutex> lk(mu_);
  return ids_.size();
}

}  // namespace conductor::serve
