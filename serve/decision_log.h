// Decision logs: `conductor serve --log-dir DIR` appends one JSONL row per routing decision (and per
// feedback label) to size-rotated files in DIR, in the format `conductor traces import --format
// jsonl` reads (docs/importers.md, docs/production.md).
//
// Requests never wait for the disk: append() puts the row into a bounded in-memory queue and
// returns; when the queue is full the row is dropped and counted (and a {"type": "log_gap"} row
// records how many, so an import can say so). One writer thread takes everything queued (up to
// batch_rows), writes it with one write() and then fdatasync()s it (group commit: a batch is what
// arrived while the previous batch was being written and synced), so
//  - a SIGKILL of the server loses only rows not yet written: the batch being assembled (rows that
//    arrived since the writer last woke) -- a line cut short by the kill is the last line of the
//    newest file and is skipped by the importer;
//  - a machine crash loses at most what was written since the last fdatasync (one batch with the
//    default fsync_interval_s: 0).
// Files: DIR/decisions-<UTC yyyymmddThhmmss>-<pid>-<seq>.jsonl, a new one when the current one
// would exceed rotate_bytes (the old one is synced and closed first, and never written again), so
// name order is time order and files imported earlier never change.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "core/config.h"

namespace conductor::serve {

struct DecisionLogConfig {
  std::string dir;                        // "" = logging off (`--log-dir`)
  int64_t rotate_bytes = 64LL << 20;      // start a new file past this size
  int batch_rows = 4096;                  // rows per write at most
  int queue_rows = 65536;                 // rows waiting at most; more are dropped (and counted)
  double fsync_interval_s = 0.0;          // 0: fdatasync after every batch; else at most this often
  bool log_query_text = true;             // false: no "text" in rows (query_id defaults to a hash of it)
  int64_t remember_requests = 100000;     // request ids kept for POST /v1/feedback (~0.28 KiB each)
  static DecisionLogConfig parse(ConfigReader r);
};

struct DecisionLogStats {
  uint64_t rows_written = 0;
  uint64_t rows_dropped = 0;   // queue full or write error
  uint64_t batches = 0;
  uint64_t fsyncs = 0;
  uint64_t bytes_written = 0;
  uint64_t files = 0;          // files opened by this process
  uint64_t write_errors = 0;
  uint64_t max_batch_rows = 0; // the largest batch so far
  int queued = 0;
};

class DecisionLog {
 public:
  // Creates `dir` if needed and opens the first file. Throws conductor::Error naming the path.
  explicit DecisionLog(DecisionLogConfig config);
  ~DecisionLog();  // close()
  DecisionLog(const DecisionLog&) = delete;
  DecisionLog& operator=(const DecisionLog&) = delete;

  // Queues one row (a JSON object without the line break). Never blocks on I/O; false when the
  // row was dropped because the queue is full.
  bool append(std::string row);
  // Writes and syncs everything queued, then stops the writer. Idempotent.
  void close();

  DecisionLogStats stats() const;
  const DecisionLogConfig& config() const { return config_; }
  std::string current_file() const;

 private:
  void run();
  void open_next_file();
  void write_batch(std::vector<std::string>& rows);
  void sync_now();

  DecisionLogConfig config_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> queue_;
  bool stop_ = false;
  uint64_t dropped_since_gap_ = 0;
  std::thread writer_;

  // Writer-thread state (current_file_ also read under mu_).
  int fd_ = -1;
  std::string current_file_;
  int64_t file_bytes_ = 0;
  uint64_t seq_ = 0;
  double last_sync_ = 0.0;
  bool unsynced_ = false;

  std::atomic<uint64_t> rows_written_{0}, rows_dropped_{0}, batches_{0}, fsyncs_{0}, bytes_{0}, files_{0},
      write_errors_{0}, max_batch_{0};
};

// The request ids of recent decisions, so POST /v1/feedback can refuse ids it never served.
// Bounded: the oldest ids are forgotten past `capacity`. Thread-safe.
class RequestIndex {
 public:
  explicit RequestIndex(int64_t capacity) : capacity_(capacity) {}
  void add(const std::string& id);
  bool contains(const std::string& id) const;
  std::size_t size() const;

 private:
  int64_t capacity_;
  mutable std::mutex mu_;
  std::unordered_set<std::string> ids_;
  std::deque<std::string> order_;
};

}  // namespace conductor::serve
