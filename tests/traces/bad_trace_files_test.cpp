// Bad-input table of the trace-file surface (issue 27): files that `read_traces` must refuse, trace
// sets that `write_traces` must refuse, and bandit logs that do not belong to a trace file
// (`match_logged_queries`, used by `conductor ope` and bc_warmstart.logs), each with a substring of
// the error. Every message names the file and the dataset, attribute or decision. These rows add to
// the ones of store_test.cpp; a new dataset or rule gets a row here (docs/bad-inputs.md counts them).
#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/test_util.h"
#include "tests/traces/trace_fixtures.h"
#include "traces/store.h"

namespace conductor {
namespace {

using testing::add_decisions;
using testing::error_of;
using testing::small_traces;
using testing::with_file;
using testing::write_int_dataset;

void write_string_attr(hid_t f, const char* name, const std::string& value) {
  H5Adelete(f, name);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
  const char* p = value.c_str();
  H5Awrite(a, t, &p);
  H5Aclose(a);
  H5Sclose(s);
  H5Tclose(t);
}

void write_int_attr(hid_t f, const char* name, int value) {
  H5Adelete(f, name);
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, name, H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT, &value);
  H5Aclose(a);
  H5Sclose(s);
}

void replace_with_ints(hid_t f, const char* name, const std::vector<int32_t>& v) {
  H5Ldelete(f, name, H5P_DEFAULT);
  write_int_dataset(f, name, v);
}

void replace_with_floats_2d(hid_t f, const char* name, hsize_t rows, hsize_t cols) {
  H5Ldelete(f, name, H5P_DEFAULT);
  hsize_t dims[2] = {rows, cols};
  std::vector<float> v(rows * cols, 0.5f);
  hid_t s = H5Screate_simple(2, dims, nullptr);
  hid_t d = H5Dcreate2(f, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  H5Dclose(d);
  H5Sclose(s);
}

// A file on disk: how to damage a valid one (with decisions), and the error reading it must give.
struct FileRow {
  const char* name;
  std::function<void(const std::string& path)> damage;
  const char* needle;
};

auto edit(std::function<void(hid_t)> f) {
  return [f](const std::string& p) { with_file(p, f); };
}
auto bytes(const std::string& contents) {
  return [contents](const std::string& p) { std::ofstream(p, std::ios::binary | std::ios::trunc) << contents; };
}

const std::vector<FileRow>& file_rows() {
  static const std::vector<FileRow> r = {
      {"empty file", bytes(""), ": not an HDF5 file (expected a conductor-traces file)"},
      {"JSON lines", bytes("{\"query\": \"q\"}\n"), ": not an HDF5 file"},
      {"HDF5 signature then garbage", bytes(std::string("\x89HDF\r\n\x1a\n", 8) + std::string(600, '\0')),
       ": cannot open HDF5 file (corrupt or truncated?)"},
      {"a folder", [](const std::string& p) { std::filesystem::remove(p); std::filesystem::create_directory(p); },
       ": not an HDF5 file"},
      {"another format", edit([](hid_t f) { write_string_attr(f, "format", "routerbench-csv"); }),
       ": attribute /format is 'routerbench-csv', expected 'conductor-traces'"},
      {"format not a string", edit([](hid_t f) { write_int_attr(f, "format", 1); }), ": attribute /format is not a string"},
      {"version 0", edit([](hid_t f) { write_int_attr(f, "version", 0); }),
       ": unsupported format version 0 (this build reads version 1)"},
      {"version not an integer", edit([](hid_t f) { write_string_attr(f, "version", "1"); }),
       ": attribute /version is not an integer"},
      {"no version", edit([](hid_t f) { H5Adelete(f, "version"); }),
       ": attribute /version is missing (not a conductor-traces file?)"},
      {"no source", edit([](hid_t f) { H5Adelete(f, "source"); }), ": attribute /source is missing"},
      {"no model names", edit([](hid_t f) { H5Ldelete(f, "/models/name", H5P_DEFAULT); }),
       ": dataset /models/name is missing"},
      {"no providers", edit([](hid_t f) { H5Ldelete(f, "/models/provider", H5P_DEFAULT); }),
       ": dataset /models/provider is missing"},
      {"no query ids", edit([](hid_t f) { H5Ldelete(f, "/queries/id", H5P_DEFAULT); }), ": dataset /queries/id is missing"},
      {"no tasks", edit([](hid_t f) { H5Ldelete(f, "/queries/task", H5P_DEFAULT); }), ": dataset /queries/task is missing"},
      {"task not strings", edit([](hid_t f) { replace_with_ints(f, "/queries/task", {1, 2, 3}); }),
       ": dataset /queries/task has the wrong type"},
      {"split of floats", edit([](hid_t f) { replace_with_floats_2d(f, "/queries/split", 3, 1); }),
       ": dataset /queries/split has the wrong type (expected integer)"},
      {"quality of rank 1", edit([](hid_t f) { replace_with_ints(f, "/outcomes/quality", {0, 1, 0, 1, 0, 1}); }),
       ": dataset /outcomes/quality has the wrong type (expected floating point)"},
      {"quality 3 x 3", edit([](hid_t f) { replace_with_floats_2d(f, "/outcomes/quality", 3, 3); }),
       ": dataset /outcomes/quality has shape [3 x 3], expected [3 x 2]"},
      {"no answers", edit([](hid_t f) { H5Ldelete(f, "/outcomes/answer", H5P_DEFAULT); }),
       ": dataset /outcomes/answer is missing"},
      {"no outcomes, no decisions",
       edit([](hid_t f) { H5Ldelete(f, "/outcomes", H5P_DEFAULT); H5Ldelete(f, "/decisions", H5P_DEFAULT); }),
       ": neither /outcomes nor /decisions is present (expected at least one)"},
      {"decision query out of range", edit([](hid_t f) {
         H5Ldelete(f, "/decisions/query", H5P_DEFAULT);
         hsize_t n = 2;
         const int64_t v[2] = {0, 7};
         hid_t s = H5Screate_simple(1, &n, nullptr);
         hid_t d = H5Dcreate2(f, "/decisions/query", H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
         H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
         H5Dclose(d);
         H5Sclose(s);
       }),
       ": /decisions/query[1]: value 7 is not a query index in [0, 3)"},
      {"decision actions short", edit([](hid_t f) { replace_with_ints(f, "/decisions/action", {1}); }),
       ": dataset /decisions/query has shape [2], expected [1]"},
      {"no decision timestamps", edit([](hid_t f) { H5Ldelete(f, "/decisions/timestamp_ms", H5P_DEFAULT); }),
       ": dataset /decisions/timestamp_ms is missing"},
      {"no logging policy ids", edit([](hid_t f) { H5Ldelete(f, "/decisions/policy", H5P_DEFAULT); }),
       ": dataset /decisions/policy is missing"},
  };
  return r;
}

// A trace set in memory that `write_traces` must refuse (nothing is written).
struct SetRow {
  const char* name;
  std::function<void(TraceSet&)> mutate;
  const char* needle;
};

const std::vector<SetRow>& set_rows() {
  static const std::vector<SetRow> r = {
      {"empty model name", [](TraceSet& t) { t.model_name[0] = ""; }, "/models/name[0]: empty model name"},
      {"negative output price", [](TraceSet& t) { t.price_out_per_mtok[0] = -3; },
       "/models/price_out_per_mtok[0]: value -3 is not a non-negative price"},
      {"input tokens -2", [](TraceSet& t) { t.input_tokens[1] = -2; },
       "/queries/input_tokens[1]: value -2 (expected >= 0, or -1 for missing)"},
      {"short text", [](TraceSet& t) { t.query_text.pop_back(); }, "/queries/text: has 2 elements, expected 3"},
      {"short split", [](TraceSet& t) { t.split.pop_back(); }, "/queries/split: has 2 elements, expected 3"},
      {"short input tokens", [](TraceSet& t) { t.input_tokens.push_back(1); },
       "/queries/input_tokens: has 4 elements, expected 3"},
      {"short costs", [](TraceSet& t) { t.cost_usd.pop_back(); }, "/outcomes/cost_usd: has 5 elements, expected 6"},
      {"NaN quality is missing, -0.5 is not", [](TraceSet& t) { t.quality[0] = -0.5f; },
       "/outcomes/quality[0,0]: value -0.5 outside [0, 1] (NaN = missing)"},
      {"decision quality 2", [](TraceSet& t) { add_decisions(t); t.decisions.quality[0] = 2.0f; },
       "/decisions/quality[0]: value 2 outside [0, 1]"},
      {"decision cost -1", [](TraceSet& t) { add_decisions(t); t.decisions.cost_usd[1] = -1; },
       "/decisions/cost_usd[1]: value -1 is not a non-negative cost"},
      {"decision latency -1", [](TraceSet& t) { add_decisions(t); t.decisions.latency_s[0] = -1.0f; },
       "/decisions/latency_s[0]: value -1 is not a non-negative duration"},
      {"availability 2", [](TraceSet& t) { add_decisions(t); t.decisions.available[0] = 2; },
       "/decisions/available[0,0]: value 2 not 0 or 1"},
      {"propensity above 1", [](TraceSet& t) { add_decisions(t); t.decisions.propensity[0] = 1.5; },
       "/decisions/propensity[0]: value 1.5 outside (0, 1]"},
      {"negative action", [](TraceSet& t) { add_decisions(t); t.decisions.action[1] = -1; },
       "/decisions/action[1]: value -1 is not a model index in [0, 2)"},
      {"negative query", [](TraceSet& t) { add_decisions(t); t.decisions.query[0] = -1; },
       "/decisions/query[0]: value -1 is not a query index in [0, 3)"},
  };
  return r;
}

// Logs and the trace file they are evaluated against (issue 27 item 2: ids alone are not enough).
struct LogRow {
  const char* name;
  std::function<void(TraceSet& logs)> mutate;
  const char* needle;
};

const std::vector<LogRow>& log_rows() {
  static const std::vector<LogRow> r = {
      {"query id the traces lack", [](TraceSet& l) { l.query_id[0] = "q9"; },
       "logs.h5: /decisions/query[0] is query 'q9', which traces.h5 does not have: they must hold the logged queries"},
      {"same id, other task", [](TraceSet& l) { l.query_task[2] = "code"; },
       "logs.h5: /decisions/query[1] is query 'q2' of task 'code', but traces.h5's query 'q2' is of task 'math'"},
      {"same id, other text", [](TraceSet& l) { l.query_text[0] = "What is 3+3?"; },
       "logs.h5: /decisions/query[0] is query 'q0' with text \"What is 3+3?\", but traces.h5's query 'q0' has text "
       "\"What is 2+2?\": the logs were recorded on other queries than these traces (same ids, another world)"},
      {"ids shuffled", [](TraceSet& l) { std::swap(l.query_id[0], l.query_id[2]); },
       "logs.h5: /decisions/query[0] is query 'q2' with text \"What is 2+2?\""},
  };
  return r;
}

TEST(BadTraceFiles, EveryDamagedFileIsRefusedNamingFileAndDataset) {
  const std::string dir = ::conductor::testing::temp_dir();
  TraceSet good = small_traces();
  add_decisions(good);
  write_traces(good, dir + "/good.h5");
  ASSERT_NO_THROW(read_traces(dir + "/good.h5"));
  for (const FileRow& row : file_rows()) {
    const std::string p = dir + "/bad.h5";
    std::filesystem::remove_all(p);
    std::filesystem::copy_file(dir + "/good.h5", p);
    row.damage(p);
    const std::string e = error_of([&] { read_traces(p); });
    EXPECT_NE(e.find(p + row.needle), std::string::npos) << row.name << "\n  expected: " << row.needle << "\n  got:      " << e;
  }
  for (const SetRow& row : set_rows()) {
    TraceSet t = small_traces();
    row.mutate(t);
    const std::string p = dir + "/refused.h5";
    const std::string e = error_of([&] { write_traces(t, p); });
    EXPECT_NE(e.find("cannot write '" + p + "': " + row.needle), std::string::npos) << row.name << "\n  expected: " << row.needle << "\n  got:      " << e;
    EXPECT_FALSE(std::filesystem::exists(p)) << row.name;
  }
  for (const LogRow& row : log_rows()) {
    TraceSet logs = small_traces();
    add_decisions(logs);
    row.mutate(logs);
    const std::string e = error_of(
        [&] { match_logged_queries(logs, "logs.h5", good, "traces.h5", "they must hold the logged queries"); });
    EXPECT_NE(e.find(row.needle), std::string::npos) << row.name << "\n  expected: " << row.needle << "\n  got:      " << e;
  }
  EXPECT_EQ(file_rows().size() + set_rows().size() + log_rows().size(), 24u + 15u + 4u);  // docs/bad-inputs.md
}

}  // namespace
}  // namespace conductor
