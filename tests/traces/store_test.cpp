// Trace store round trip and every validation error (DESIGN.md section 3, docs/trace-format.md).
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

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

template <class T>
bool same_floats(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
  return true;
}

TEST(TraceStore, RoundTripIsExact) {
  TraceSet t = small_traces();
  add_decisions(t);
  const std::string path = testing::temp_dir() + "/t.h5";
  write_traces(t, path);
  TraceSet r = read_traces(path);
  EXPECT_EQ(r.source, t.source);
  EXPECT_EQ(r.model_name, t.model_name);
  EXPECT_EQ(r.model_provider, t.model_provider);
  EXPECT_TRUE(same_floats(r.price_in_per_mtok, t.price_in_per_mtok));
  EXPECT_TRUE(same_floats(r.price_out_per_mtok, t.price_out_per_mtok));
  EXPECT_EQ(r.query_id, t.query_id);
  EXPECT_EQ(r.query_task, t.query_task);
  EXPECT_EQ(r.query_text, t.query_text);
  EXPECT_EQ(r.input_tokens, t.input_tokens);
  EXPECT_EQ(r.split, t.split);
  EXPECT_TRUE(same_floats(r.quality, t.quality));
  EXPECT_TRUE(same_floats(r.cost_usd, t.cost_usd));
  EXPECT_TRUE(same_floats(r.latency_s, t.latency_s));
  EXPECT_EQ(r.output_tokens, t.output_tokens);
  EXPECT_EQ(r.answer, t.answer);
  EXPECT_EQ(r.error, t.error);
  EXPECT_EQ(r.decisions.query, t.decisions.query);
  EXPECT_EQ(r.decisions.action, t.decisions.action);
  EXPECT_EQ(r.decisions.propensity, t.decisions.propensity);
  EXPECT_TRUE(same_floats(r.decisions.quality, t.decisions.quality));
  EXPECT_EQ(r.decisions.timestamp_ms, t.decisions.timestamp_ms);
  EXPECT_EQ(r.decisions.available, t.decisions.available);
  EXPECT_EQ(r.decisions.policy, t.decisions.policy);
  EXPECT_EQ(r.split_indices(Split::kTest), std::vector<std::size_t>{2});
}

TEST(TraceStore, WithoutTextOrDecisions) {
  TraceSet t = small_traces();
  t.query_text.clear();
  const std::string path = testing::temp_dir() + "/t.h5";
  write_traces(t, path);
  TraceSet r = read_traces(path);
  EXPECT_FALSE(r.has_text());
  EXPECT_FALSE(r.has_decisions());
  EXPECT_EQ(r.n_queries(), 3u);
}

TEST(TraceStore, SameContentsGiveIdenticalBytes) {
  const std::string dir = testing::temp_dir();
  write_traces(small_traces(), dir + "/a.h5");
  // HDF5 stamps objects with their creation time unless told not to: cross a second boundary.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  write_traces(small_traces(), dir + "/b.h5");
  std::ifstream a(dir + "/a.h5", std::ios::binary), b(dir + "/b.h5", std::ios::binary);
  std::string sa((std::istreambuf_iterator<char>(a)), {}), sb((std::istreambuf_iterator<char>(b)), {});
  EXPECT_EQ(sa, sb);
}

// ---- validation on write: each rule names the dataset ----
struct BadCase {
  const char* name;
  std::function<void(TraceSet&)> mutate;
  const char* expected;
};

TEST(TraceStore, ValidationErrorsNameTheDataset) {
  const std::vector<BadCase> cases = {
      {"quality > 1", [](TraceSet& t) { t.quality[3] = 1.5f; }, "/outcomes/quality[1,1]: value 1.5 outside [0, 1]"},
      {"negative cost", [](TraceSet& t) { t.cost_usd[0] = -1; }, "/outcomes/cost_usd[0,0]"},
      {"inf latency", [](TraceSet& t) { t.latency_s[1] = INFINITY; }, "/outcomes/latency_s[0,1]"},
      {"bad tokens", [](TraceSet& t) { t.output_tokens[2] = -5; }, "/outcomes/output_tokens[1,0]"},
      {"bad answer", [](TraceSet& t) { t.answer[2] = -2; }, "/outcomes/answer[1,0]"},
      {"bad error", [](TraceSet& t) { t.error[2] = 7; }, "/outcomes/error[1,0]: value 7"},
      {"bad split", [](TraceSet& t) { t.split[1] = 3; }, "/queries/split[1]: value 3"},
      {"short task", [](TraceSet& t) { t.query_task.pop_back(); }, "/queries/task: has 2 elements, expected 3"},
      {"short quality", [](TraceSet& t) { t.quality.pop_back(); }, "/outcomes/quality: has 5 elements, expected 6"},
      {"negative price", [](TraceSet& t) { t.price_in_per_mtok[0] = -1; }, "/models/price_in_per_mtok[0]"},
      {"duplicate model", [](TraceSet& t) { t.model_name[1] = "big"; }, "/models/name[1]: duplicate model 'big'"},
      {"no models", [](TraceSet& t) { t.model_name.clear(); }, "/models/name: no models"},
      {"zero propensity", [](TraceSet& t) { add_decisions(t); t.decisions.propensity[0] = 0; },
       "/decisions/propensity[0]: value 0 outside (0, 1]"},
      {"NaN propensity", [](TraceSet& t) { add_decisions(t); t.decisions.propensity[1] = NAN; },
       "/decisions/propensity[1]: missing (NaN)"},
      {"action out of range", [](TraceSet& t) { add_decisions(t); t.decisions.action[0] = 2; },
       "/decisions/action[0]: value 2 is not a model index in [0, 2)"},
      {"query out of range", [](TraceSet& t) { add_decisions(t); t.decisions.query[1] = 3; },
       "/decisions/query[1]: value 3"},
      {"unavailable action", [](TraceSet& t) { add_decisions(t); t.decisions.available[1] = 0; },
       "/decisions/available[0,1]: the chosen action 1 is marked unavailable"},
  };
  const std::string dir = testing::temp_dir();
  for (const auto& c : cases) {
    TraceSet t = small_traces();
    c.mutate(t);
    const std::string path = dir + "/bad.h5";
    std::string msg = error_of([&] { write_traces(t, path); });
    EXPECT_NE(msg.find(c.expected), std::string::npos) << c.name << ": got " << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << c.name << ": message should name the file: " << msg;
    EXPECT_FALSE(std::filesystem::exists(path)) << c.name << ": no output may be left behind";
  }
  // Nothing else (no temporary file) was left in the folder either.
  EXPECT_TRUE(std::filesystem::is_empty(dir));
}

// ---- files damaged after writing ----
TEST(TraceStore, ReadErrorsNameFileAndDataset) {
  const std::string dir = testing::temp_dir();
  const std::string good = dir + "/good.h5";
  TraceSet base = small_traces();
  add_decisions(base);
  write_traces(base, good);

  auto copy = [&](const std::string& name) {
    std::string p = dir + "/" + name;
    std::filesystem::copy_file(good, p, std::filesystem::copy_options::overwrite_existing);
    return p;
  };

  // Not there.
  EXPECT_NE(error_of([&] { read_traces(dir + "/nope.h5"); }).find("no such file"), std::string::npos);
  // Not HDF5.
  {
    std::string p = dir + "/text.h5";
    std::ofstream(p) << "query,model\n1,2\n";
    EXPECT_NE(error_of([&] { read_traces(p); }).find("not an HDF5 file"), std::string::npos);
  }
  // Truncated.
  {
    std::string p = copy("trunc.h5");
    std::filesystem::resize_file(p, std::filesystem::file_size(p) / 2);
    std::string msg = error_of([&] { read_traces(p); });
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_EQ(msg.find("<no error>"), std::string::npos);
  }
  // Wrong version.
  {
    std::string p = copy("v2.h5");
    with_file(p, [](hid_t f) {
      int v = 2;
      hid_t a = H5Aopen(f, "version", H5P_DEFAULT);
      H5Awrite(a, H5T_NATIVE_INT, &v);
      H5Aclose(a);
    });
    EXPECT_NE(error_of([&] { read_traces(p); }).find("unsupported format version 2 (this build reads version 1)"),
              std::string::npos);
  }
  // Missing format attribute.
  {
    std::string p = copy("noformat.h5");
    with_file(p, [](hid_t f) { H5Adelete(f, "format"); });
    EXPECT_NE(error_of([&] { read_traces(p); }).find("attribute /format is missing"), std::string::npos);
  }
  // Missing dataset.
  {
    std::string p = copy("missing.h5");
    with_file(p, [](hid_t f) { H5Ldelete(f, "/outcomes/cost_usd", H5P_DEFAULT); });
    EXPECT_NE(error_of([&] { read_traces(p); }).find("dataset /outcomes/cost_usd is missing"), std::string::npos);
  }
  // Missing propensities.
  {
    std::string p = copy("noprop.h5");
    with_file(p, [](hid_t f) { H5Ldelete(f, "/decisions/propensity", H5P_DEFAULT); });
    EXPECT_NE(error_of([&] { read_traces(p); }).find("/decisions/propensity is missing"), std::string::npos);
  }
  // Inconsistent shape.
  {
    std::string p = copy("shape.h5");
    with_file(p, [](hid_t f) {
      H5Ldelete(f, "/queries/input_tokens", H5P_DEFAULT);
      write_int_dataset(f, "/queries/input_tokens", {1, 2, 3, 4});
    });
    EXPECT_NE(error_of([&] { read_traces(p); }).find("dataset /queries/input_tokens has shape [4], expected [3]"),
              std::string::npos);
  }
  // Wrong type (integers where floats are expected).
  {
    std::string p = copy("type.h5");
    with_file(p, [](hid_t f) {
      H5Ldelete(f, "/models/price_in_per_mtok", H5P_DEFAULT);
      write_int_dataset(f, "/models/price_in_per_mtok", {1, 2});
    });
    EXPECT_NE(error_of([&] { read_traces(p); }).find("/models/price_in_per_mtok has the wrong type (expected floating point)"),
              std::string::npos);
  }
  // Value out of range written by another tool.
  {
    std::string p = copy("range.h5");
    with_file(p, [](hid_t f) {
      H5Ldelete(f, "/queries/split", H5P_DEFAULT);
      write_int_dataset(f, "/queries/split", {0, 1, 9});
    });
    std::string msg = error_of([&] { read_traces(p); });
    EXPECT_NE(msg.find("/queries/split[2]: value 9"), std::string::npos) << msg;
  }
}

TEST(TraceStore, FailedWriteKeepsThePreviousFile) {
  const std::string path = testing::temp_dir() + "/keep.h5";
  write_traces(small_traces(), path);
  const auto size = std::filesystem::file_size(path);
  TraceSet bad = small_traces();
  bad.quality[0] = 2.0f;
  EXPECT_THROW(write_traces(bad, path), Error);
  EXPECT_EQ(std::filesystem::file_size(path), size);
  EXPECT_EQ(read_traces(path).quality[0], 1.0f);
}

// The documented dataset names are readable by Python's h5py (python3-h5py is a project dependency).
TEST(TraceStore, ReadableByH5py) {
  // Debian's interpreter, where python3-h5py installs (a pyenv python3 on PATH would not see it).
  const std::string python = std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  ASSERT_EQ(std::system((python + " -c 'import h5py' > /dev/null 2>&1").c_str()), 0)
      << "python3-h5py is missing: run scripts/install-deps.sh";
  TraceSet t = small_traces();
  add_decisions(t);
  const std::string dir = testing::temp_dir();
  const std::string path = dir + "/py.h5";
  write_traces(t, path);
  const std::string script = dir + "/check.py";
  std::ofstream(script) << R"PY(
import sys, h5py, math
f = h5py.File(sys.argv[1], "r")
a = f.attrs
fmt = a["format"]; fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
assert fmt == "conductor-traces", fmt
assert int(a["version"]) == 1
names = [n.decode() if isinstance(n, bytes) else n for n in f["/models/name"][()]]
assert names == ["big", "small"], names
q = f["/outcomes/quality"]
assert q.shape == (3, 2) and q.dtype.name == "float32", (q.shape, q.dtype)
assert math.isnan(q[1, 1]) and q[2, 0] == 1.0
assert f["/outcomes/cost_usd"].dtype.name == "float64"
assert list(f["/queries/split"][()]) == [0, 1, 2]
assert f["/outcomes/error"].dtype.name == "uint8"
assert f["/decisions/available"].shape == (2, 2)
assert list(f["/decisions/propensity"][()]) == [0.5, 0.25]
t = f["/queries/text"][2]; t = t.decode() if isinstance(t, bytes) else t
assert t == "Solve x^2=4 \u00e9", t
assert f["/outcomes/quality"].compression == "gzip"
print("h5py ok")
)PY";
  std::string cmd = python + " " + script + " " + path + " > " + dir + "/out.txt 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream out(dir + "/out.txt");
  std::string text((std::istreambuf_iterator<char>(out)), {});
  EXPECT_EQ(rc, 0) << text;
  EXPECT_NE(text.find("h5py ok"), std::string::npos) << text;
}

}  // namespace
}  // namespace conductor

// ---- /queries/embedding (features.encoder, docs/encoder.md) ----
namespace conductor {
namespace {

TraceSet with_embedding() {
  TraceSet t = testing::small_traces();
  t.embedding_dim = 4;
  for (int i = 0; i < 12; ++i) t.query_embedding.push_back(0.125f * static_cast<float>(i) - 0.7f);
  t.embedding_model = "tiny-encoder";
  t.embedding_sha256 = std::string(64, 'a');
  return t;
}

TEST(TraceStore, EmbeddingRoundTripKeepsValuesAndAttributes) {
  const TraceSet t = with_embedding();
  const std::string path = testing::temp_dir() + "/e.h5";
  write_traces(t, path);
  const TraceSet r = read_traces(path);
  ASSERT_TRUE(r.has_embedding());
  EXPECT_EQ(r.embedding_dim, 4);
  EXPECT_EQ(r.query_embedding, t.query_embedding);
  EXPECT_EQ(r.embedding_model, "tiny-encoder");
  EXPECT_EQ(r.embedding_sha256, std::string(64, 'a'));
  EXPECT_EQ(r.embedding_of(2)[1], t.query_embedding[9]);
  // A file without the dataset reads as before: no embedding.
  write_traces(testing::small_traces(), path);
  EXPECT_FALSE(read_traces(path).has_embedding());
}

TEST(TraceStore, EmbeddingValidationNamesTheDataset) {
  const std::vector<std::pair<std::function<void(TraceSet&)>, std::string>> cases = {
      {[](TraceSet& t) { t.query_embedding[6] = NAN; }, "/queries/embedding[1,2]: value nan is not finite"},
      {[](TraceSet& t) { t.query_embedding.pop_back(); }, "/queries/embedding: has 11 elements, expected 12"},
      {[](TraceSet& t) { t.embedding_sha256 = "ABC"; }, "attribute sha256 'ABC' is not 64 lowercase hex digits"},
      {[](TraceSet& t) { t.embedding_model.clear(); }, "attribute model is empty"},
      {[](TraceSet& t) { t.embedding_dim = 0; }, "/queries/embedding: 12 values but dimension 0"},
  };
  const std::string dir = testing::temp_dir();
  for (const auto& [mutate, expected] : cases) {
    TraceSet t = with_embedding();
    mutate(t);
    const std::string path = dir + "/bad.h5";
    const std::string msg = error_of([&] { write_traces(t, path); });
    EXPECT_NE(msg.find(expected), std::string::npos) << "got " << msg;
    EXPECT_FALSE(std::filesystem::exists(path));
  }
}

TEST(TraceStore, EmbeddingWithoutItsAttributeIsAReadError) {
  const std::string path = testing::temp_dir() + "/e.h5";
  write_traces(with_embedding(), path);
  testing::with_file(path, [](hid_t f) {
    hid_t d = H5Dopen2(f, "/queries/embedding", H5P_DEFAULT);
    ASSERT_GE(H5Adelete(d, "sha256"), 0);
    H5Dclose(d);
  });
  const std::string msg = error_of([&] { read_traces(path); });
  EXPECT_NE(msg.find(path + ": attribute /queries/embedding@sha256 is missing"), std::string::npos) << msg;
}

}  // namespace
}  // namespace conductor
