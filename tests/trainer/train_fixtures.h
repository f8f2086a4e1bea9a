// Helpers of the trainer tests that run whole trainings in-process: a run folder's metrics rows and
// a training with the options those tests vary (stop after N updates, resume).
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/json_util.h"
#include "trainer/train.h"

namespace conductor::testing {

// The rows of run_dir/metrics.jsonl, parsed.
inline std::vector<json> metric_rows(const std::string& run_dir) {
  std::istringstream in(read_file(run_dir + "/metrics.jsonl"));
  std::vector<json> rows;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) rows.push_back(json::parse(line));
  return rows;
}

// Trains `doc` into `dir` without console output; stop_after >= 0 stops after that many updates.
inline TrainResult train_quietly(ConfigDoc doc, const std::string& dir, int64_t stop_after = -1, bool resume = false) {
  TrainOptions opt;
  opt.run_dir = dir;
  opt.console = false;
  opt.resume = resume;
  opt.stop_after_updates = stop_after;
  return run_training(doc, opt);
}

}  // namespace conductor::testing
