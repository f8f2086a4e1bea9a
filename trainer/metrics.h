// Training metrics and the sinks that record them. Algorithms return Metrics; sinks write them.
//
// Metric names are "group/name" (as CleanRL / TensorBoard): charts/*, losses/*, bc/*, time/*.
// Names under "time/" depend on wall-clock time: the JSONL sink leaves them out so that runs with
// the same seed write byte-identical metrics.jsonl files; TensorBoard and the console show them.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace conductor {

struct Metrics {
  int64_t update = 0;       // 0 = before RL (warm start)
  int64_t global_step = 0;  // environment steps so far
  std::vector<std::pair<std::string, double>> values;  // in insertion order

  void set(const std::string& name, double v);
  // NaN when absent.
  double get(const std::string& name) const;
  bool has(const std::string& name) const;
};

class MetricsSink {
 public:
  virtual ~MetricsSink() = default;
  virtual void write(const Metrics& m) = 0;
  virtual void flush() {}
};

// One JSON object per line: {"update":..,"global_step":..,<name>:<value>...}; non-finite values are
// written as null. Appends to `path`, starting at byte `resume_offset` (the file is truncated there:
// lines written after the checkpoint being resumed are dropped). bytes_written() is the size of the
// file so far (stored in checkpoints).
class JsonlSink final : public MetricsSink {
 public:
  JsonlSink(const std::string& path, uint64_t resume_offset);
  ~JsonlSink() override;
  void write(const Metrics& m) override;
  void flush() override;
  uint64_t bytes_written() const { return bytes_; }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  uint64_t bytes_ = 0;
};

// TensorBoard scalar summaries in the tfevents record format (length, masked crc32c of the length,
// the Event protobuf, masked crc32c of the data). Each process writes its own file
// events.out.tfevents.<unix time>.<host>.<pid>.<n>.conductor in `dir`, as TensorBoard expects.
class TensorBoardSink final : public MetricsSink {
 public:
  explicit TensorBoardSink(const std::string& dir);
  ~TensorBoardSink() override;
  void write(const Metrics& m) override;
  void flush() override;
  const std::string& path() const { return path_; }

  // Encodes one record (exposed for tests).
  static std::string record(const std::string& data);
  // Event{wall_time, step, summary{value{tag, simple_value}...}} as protobuf bytes.
  static std::string scalar_event(double wall_time, int64_t step,
                                  const std::vector<std::pair<std::string, float>>& values);
  static std::string file_version_event(double wall_time);

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
};

// A progress line on stderr: steps, steps/s, ETA, mean return, quality, cost. On a terminal it is
// rewritten in place every update; otherwise one line every `every` updates and at the end.
class ConsoleSink final : public MetricsSink {
 public:
  ConsoleSink(int64_t total_steps, int64_t num_updates, int every);
  void write(const Metrics& m) override;
  void flush() override;

 private:
  int64_t total_steps_, num_updates_;
  int every_;
  bool tty_;
  bool dirty_ = false;
};

}  // namespace conductor
