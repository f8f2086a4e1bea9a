// Shared fixtures of the trace tests: a small hand-written trace set (3 queries, 2 models, texts,
// missing values), its bandit decisions, HDF5 edits that damage a written file, and the message of
// an error.
#pragma once

#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "traces/trace_set.h"

namespace conductor::testing {

inline TraceSet small_traces() {
  TraceSet t;
  t.source = "unit test";
  t.model_name = {"big", "small"};
  t.model_provider = {"openai", "meta"};
  t.price_in_per_mtok = {10.0, 0.2};
  t.price_out_per_mtok = {30.0, std::nan("")};  // unknown price is allowed
  t.query_id = {"q0", "q1", "q2"};
  t.query_task = {"math", "code", "math"};
  t.query_text = {"What is 2+2?", "def f(): ...", "Solve x^2=4 \xC3\xA9"};
  t.input_tokens = {5, 7, -1};
  t.split = {0, 1, 2};
  t.allocate_outcomes();
  t.quality = {1.0f, 0.0f, 0.5f, kMissingF, 1.0f, 1.0f};
  t.cost_usd = {0.01, 0.0001, 0.02, kMissingD, 0.03, 0.0002};
  t.latency_s = {1.5f, 0.3f, 2.0f, kMissingF, 2.5f, 0.4f};
  t.output_tokens = {10, 3, 20, -1, 30, 4};
  t.answer = {2, 1, -1, -1, 0, 0};
  t.error = {0, 0, 0, kErrorMissing, 0, 1};
  return t;
}

inline void add_decisions(TraceSet& t) {
  Decisions& d = t.decisions;
  d.query = {0, 2};
  d.action = {1, 0};
  d.propensity = {0.5, 0.25};
  d.quality = {0.0f, kMissingF};
  d.cost_usd = {0.0001, 0.03};
  d.latency_s = {0.3f, 2.5f};
  d.timestamp_ms = {1700000000000, 1700000001000};
  d.available = {1, 1, 1, 0};
  d.policy = {"uniform", "uniform"};
}

// The message of the conductor::Error `f` throws, or "<no error>".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

// Opens `path` read-write, runs `f` on it, closes it.
inline void with_file(const std::string& path, const std::function<void(hid_t)>& f) {
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  f(file);
  H5Fclose(file);
}

inline void write_int_dataset(hid_t file, const char* name, const std::vector<int32_t>& v) {
  hsize_t n = v.size();
  hid_t s = H5Screate_simple(1, &n, nullptr);
  hid_t d = H5Dcreate2(file, name, H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  H5Dclose(d);
  H5Sclose(s);
}

}  // namespace conductor::testing
