// HDF5 trace store, format "conductor-traces" version 1. See docs/trace-format.md.
#include "traces/store.h"

#include <hdf5.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>

#include "core/atomic_file.h"
#include "core/error.h"

namespace conductor {

namespace {

// The HDF5 library is not thread-safe in Debian's serial build: serialize every call through here.
std::mutex& hdf5_mutex() {
  static std::mutex m;
  return m;
}

// Silences HDF5's own error-stack printing: we report errors ourselves with file and dataset names.
void silence_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

// RAII owner of an hid_t.
class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*closer)(hid_t)) : id_(id), closer_(closer) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      closer_ = o.closer_;
      o.id_ = -1;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && closer_) closer_(id_);
    id_ = -1;
  }

 private:
  hid_t id_ = -1;
  herr_t (*closer_)(hid_t) = nullptr;
};

Handle vlen_string_type() {
  Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

// ------------------------------------------------------------------------------------------------
// Writing

class Writer {
 public:
  Writer(const std::string& tmp, const std::string& final_path) : final_(final_path) {
    file_ = Handle(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!file_.ok()) fail("cannot create HDF5 file '", final_path, "' (temporary '", tmp, "')");
  }

  void group(const char* name) {
    Handle gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
    H5Pset_obj_track_times(gcpl.get(), 0);  // no timestamps: same contents, same bytes
    Handle g(H5Gcreate2(file_.get(), name, H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose);
    if (!g.ok()) fail(final_, ": cannot create group ", name);
  }

  void string_attr(const char* name, const std::string& value) {
    Handle t = vlen_string_type();
    Handle s(H5Screate(H5S_SCALAR), H5Sclose);
    Handle a(H5Acreate2(file_.get(), name, t.get(), s.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    const char* p = value.c_str();
    if (!a.ok() || H5Awrite(a.get(), t.get(), &p) < 0) fail(final_, ": cannot write attribute /", name);
  }

  // A string attribute of the dataset `dataset` (already written).
  void dataset_string_attr(const char* dataset, const char* name, const std::string& value) {
    Handle ds(H5Dopen2(file_.get(), dataset, H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) fail(final_, ": cannot open dataset ", dataset);
    Handle t = vlen_string_type();
    Handle s(H5Screate(H5S_SCALAR), H5Sclose);
    Handle a(H5Acreate2(ds.get(), name, t.get(), s.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    const char* p = value.c_str();
    if (!a.ok() || H5Awrite(a.get(), t.get(), &p) < 0) fail(final_, ": cannot write attribute ", dataset, "@", name);
  }

  void int_attr(const char* name, int value) {
    Handle s(H5Screate(H5S_SCALAR), H5Sclose);
    Handle a(H5Acreate2(file_.get(), name, H5T_STD_I32LE, s.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!a.ok() || H5Awrite(a.get(), H5T_NATIVE_INT, &value) < 0) fail(final_, ": cannot write attribute /", name);
  }

  // rows x cols (cols = 0 for a 1-D dataset).
  void dataset(const char* name, hid_t file_type, hid_t mem_type, const void* data, hsize_t rows,
               hsize_t cols = 0) {
    const int rank = cols == 0 ? 1 : 2;
    hsize_t dims[2] = {rows, cols};
    Handle space(H5Screate_simple(rank, dims, nullptr), H5Sclose);
    Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    H5Pset_obj_track_times(dcpl.get(), 0);  // no timestamps: same contents, same bytes
    if (rows > 0 && (rank == 1 || cols > 0)) {
      // Chunks of about 64k elements (whole rows for matrices), gzip level 4 with shuffle.
      const hsize_t row_elems = rank == 1 ? 1 : cols;
      hsize_t chunk_rows = std::max<hsize_t>(1, 65536 / row_elems);
      chunk_rows = std::min(chunk_rows, rows);
      hsize_t chunk[2] = {chunk_rows, cols};
      H5Pset_chunk(dcpl.get(), rank, chunk);
      H5Pset_shuffle(dcpl.get());
      H5Pset_deflate(dcpl.get(), 4);
    }
    Handle ds(H5Dcreate2(file_.get(), name, file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
              H5Dclose);
    if (!ds.ok()) fail(final_, ": cannot create dataset ", name);
    if (rows > 0 && H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
      fail(final_, ": cannot write dataset ", name);
  }

  void strings(const char* name, const std::vector<std::string>& v) {
    std::vector<const char*> ptrs(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) ptrs[i] = v[i].c_str();
    Handle t = vlen_string_type();
    dataset(name, t.get(), t.get(), ptrs.data(), v.size());
  }

  void close() {
    if (H5Fflush(file_.get(), H5F_SCOPE_GLOBAL) < 0) fail(final_, ": cannot flush");
    file_.reset();
  }

 private:
  std::string final_;
  Handle file_;
};

// ------------------------------------------------------------------------------------------------
// Reading

void expect_len(const std::string& path, const char* name, const std::vector<hsize_t>& dims, hsize_t rows,
                hsize_t cols = 0) {
  bool ok = dims[0] == rows && (dims.size() < 2 || dims[1] == cols);
  if (!ok) {
    std::string got = std::to_string(dims[0]);
    if (dims.size() == 2) got += " x " + std::to_string(dims[1]);
    std::string want = std::to_string(rows);
    if (dims.size() == 2) want += " x " + std::to_string(cols);
    fail(path, ": dataset ", name, " has shape [", got, "], expected [", want, "]");
  }
}

class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path) {
    if (!std::filesystem::exists(path)) fail("cannot open trace file '", path, "': no such file");
    htri_t is = H5Fis_hdf5(path.c_str());
    if (is <= 0) fail(path, ": not an HDF5 file (expected a conductor-traces file)");
    file_ = Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!file_.ok()) fail(path, ": cannot open HDF5 file (corrupt or truncated?)");
  }

  bool exists(const char* name) const {
    // Check each path component so that a missing group is not an error.
    std::string p;
    std::string s(name);
    std::size_t pos = 1;
    while (true) {
      std::size_t next = s.find('/', pos);
      p = s.substr(0, next);
      htri_t e = H5Lexists(file_.get(), p.c_str(), H5P_DEFAULT);
      if (e <= 0) return false;
      if (next == std::string::npos) return true;
      pos = next + 1;
    }
  }

  std::string string_attr(const char* name) const {
    if (H5Aexists(file_.get(), name) <= 0)
      fail(path_, ": attribute /", name, " is missing (not a conductor-traces file?)");
    return read_string_attr(file_.get(), name, std::string("/") + name);
  }

  // A string attribute of a dataset ("dataset@name" in messages).
  std::string dataset_string_attr(const char* dataset, const char* name) const {
    Handle ds(H5Dopen2(file_.get(), dataset, H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) fail(path_, ": cannot open dataset ", dataset);
    const std::string where = std::string(dataset) + "@" + name;
    if (H5Aexists(ds.get(), name) <= 0) fail(path_, ": attribute ", where, " is missing");
    return read_string_attr(ds.get(), name, where);
  }

  std::string read_string_attr(hid_t obj, const char* name, const std::string& where) const {
    Handle a(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
    Handle ft(H5Aget_type(a.get()), H5Tclose);
    if (H5Tget_class(ft.get()) != H5T_STRING) fail(path_, ": attribute ", where, " is not a string");
    if (H5Tis_variable_str(ft.get()) > 0) {
      Handle mt = vlen_string_type();
      char* p = nullptr;
      if (H5Aread(a.get(), mt.get(), &p) < 0) fail(path_, ": cannot read attribute ", where);
      std::string out = p ? p : "";
      Handle space(H5Aget_space(a.get()), H5Sclose);
      H5Dvlen_reclaim(mt.get(), space.get(), H5P_DEFAULT, &p);
      return out;
    }
    const std::size_t n = H5Tget_size(ft.get());
    std::string buf(n, '\0');
    Handle mt(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mt.get(), n);
    if (H5Aread(a.get(), mt.get(), buf.data()) < 0) fail(path_, ": cannot read attribute ", where);
    buf.resize(std::strlen(buf.c_str()));
    return buf;
  }

  int int_attr(const char* name) const {
    if (H5Aexists(file_.get(), name) <= 0)
      fail(path_, ": attribute /", name, " is missing (not a conductor-traces file?)");
    Handle a(H5Aopen(file_.get(), name, H5P_DEFAULT), H5Aclose);
    Handle ft(H5Aget_type(a.get()), H5Tclose);
    if (H5Tget_class(ft.get()) != H5T_INTEGER) fail(path_, ": attribute /", name, " is not an integer");
    int v = 0;
    if (H5Aread(a.get(), H5T_NATIVE_INT, &v) < 0) fail(path_, ": cannot read attribute /", name);
    return v;
  }

  // Opens `name`, checks its class and rank; returns dims.
  Handle open(const char* name, H5T_class_t cls, int rank, std::vector<hsize_t>& dims) const {
    if (!exists(name)) fail(path_, ": dataset ", name, " is missing");
    Handle ds(H5Dopen2(file_.get(), name, H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) fail(path_, ": cannot open dataset ", name);
    Handle ft(H5Dget_type(ds.get()), H5Tclose);
    if (H5Tget_class(ft.get()) != cls) {
      const char* want = cls == H5T_FLOAT ? "floating point" : cls == H5T_INTEGER ? "integer" : "string";
      fail(path_, ": dataset ", name, " has the wrong type (expected ", want, ")");
    }
    Handle space(H5Dget_space(ds.get()), H5Sclose);
    int r = H5Sget_simple_extent_ndims(space.get());
    if (r != rank) fail(path_, ": dataset ", name, " has rank ", r, ", expected ", rank);
    dims.assign(rank, 0);
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    return ds;
  }

  template <class T>
  std::vector<T> numbers(const char* name, H5T_class_t cls, hid_t mem_type, int rank,
                         std::vector<hsize_t>& dims) const {
    Handle ds = open(name, cls, rank, dims);
    hsize_t n = 1;
    for (auto d : dims) n *= d;
    std::vector<T> out(n);
    if (n > 0 && H5Dread(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
      fail(path_, ": cannot read dataset ", name, " (corrupt or truncated file?)");
    return out;
  }

  std::vector<std::string> strings(const char* name, std::vector<hsize_t>& dims) const {
    Handle ds = open(name, H5T_STRING, 1, dims);
    const hsize_t n = dims[0];
    std::vector<std::string> out(n);
    if (n == 0) return out;
    Handle ft(H5Dget_type(ds.get()), H5Tclose);
    if (H5Tis_variable_str(ft.get()) > 0) {
      Handle mt = vlen_string_type();
      std::vector<char*> ptrs(n, nullptr);
      if (H5Dread(ds.get(), mt.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
        fail(path_, ": cannot read dataset ", name, " (corrupt or truncated file?)");
      for (hsize_t i = 0; i < n; ++i) out[i] = ptrs[i] ? ptrs[i] : "";
      Handle space(H5Dget_space(ds.get()), H5Sclose);
      H5Dvlen_reclaim(mt.get(), space.get(), H5P_DEFAULT, ptrs.data());
    } else {
      const std::size_t w = H5Tget_size(ft.get());
      Handle mt(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(mt.get(), w);
      std::vector<char> buf(n * w);
      if (H5Dread(ds.get(), mt.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
        fail(path_, ": cannot read dataset ", name);
      for (hsize_t i = 0; i < n; ++i) out[i] = std::string(buf.data() + i * w, strnlen(buf.data() + i * w, w));
    }
    return out;
  }

  // numbers() / strings() of a dataset whose shape must be [rows] or, with cols, [rows x cols].
  template <class T>
  std::vector<T> numbers_of_shape(const char* name, H5T_class_t cls, hid_t mem_type, hsize_t rows) const {
    std::vector<hsize_t> dims;
    std::vector<T> out = numbers<T>(name, cls, mem_type, 1, dims);
    expect_len(path_, name, dims, rows);
    return out;
  }
  template <class T>
  std::vector<T> numbers_of_shape(const char* name, H5T_class_t cls, hid_t mem_type, hsize_t rows,
                                  hsize_t cols) const {
    std::vector<hsize_t> dims;
    std::vector<T> out = numbers<T>(name, cls, mem_type, 2, dims);
    expect_len(path_, name, dims, rows, cols);
    return out;
  }
  std::vector<std::string> strings_of_length(const char* name, hsize_t rows) const {
    std::vector<hsize_t> dims;
    std::vector<std::string> out = strings(name, dims);
    expect_len(path_, name, dims, rows);
    return out;
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  Handle file_;
};

}  // namespace

void write_traces(const TraceSet& t, const std::string& path) {
  t.validate("cannot write '" + path + "'");
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  silence_hdf5();
  AtomicOutput out(path);
  {
    Writer w(out.temp_path(), path);
    const hsize_t N = t.n_queries(), M = t.n_models();
    w.string_attr("format", kTraceFormatName);
    w.int_attr("version", kTraceFormatVersion);
    w.string_attr("source", t.source);
    w.group("/models");
    w.strings("/models/name", t.model_name);
    w.strings("/models/provider", t.model_provider);
    w.dataset("/models/price_in_per_mtok", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t.price_in_per_mtok.data(), M);
    w.dataset("/models/price_out_per_mtok", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t.price_out_per_mtok.data(), M);
    w.group("/queries");
    w.strings("/queries/id", t.query_id);
    w.strings("/queries/task", t.query_task);
    if (t.has_text()) w.strings("/queries/text", t.query_text);
    if (t.has_embedding()) {
      w.dataset("/queries/embedding", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t.query_embedding.data(), N,
                static_cast<hsize_t>(t.embedding_dim));
      w.dataset_string_attr("/queries/embedding", "model", t.embedding_model);
      w.dataset_string_attr("/queries/embedding", "sha256", t.embedding_sha256);
    }
    w.dataset("/queries/input_tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, t.input_tokens.data(), N);
    w.dataset("/queries/split", H5T_STD_U8LE, H5T_NATIVE_UINT8, t.split.data(), N);
    if (t.has_outcomes()) {
      w.group("/outcomes");
      w.dataset("/outcomes/quality", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t.quality.data(), N, M);
      w.dataset("/outcomes/cost_usd", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t.cost_usd.data(), N, M);
      w.dataset("/outcomes/latency_s", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t.latency_s.data(), N, M);
      w.dataset("/outcomes/output_tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, t.output_tokens.data(), N, M);
      w.dataset("/outcomes/answer", H5T_STD_I32LE, H5T_NATIVE_INT32, t.answer.data(), N, M);
      w.dataset("/outcomes/error", H5T_STD_U8LE, H5T_NATIVE_UINT8, t.error.data(), N, M);
    }
    if (t.has_decisions()) {
      const Decisions& d = t.decisions;
      const hsize_t K = d.size();
      w.group("/decisions");
      w.dataset("/decisions/query", H5T_STD_I64LE, H5T_NATIVE_INT64, d.query.data(), K);
      w.dataset("/decisions/action", H5T_STD_I32LE, H5T_NATIVE_INT32, d.action.data(), K);
      w.dataset("/decisions/propensity", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, d.propensity.data(), K);
      w.dataset("/decisions/quality", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, d.quality.data(), K);
      w.dataset("/decisions/cost_usd", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, d.cost_usd.data(), K);
      w.dataset("/decisions/latency_s", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, d.latency_s.data(), K);
      w.dataset("/decisions/timestamp_ms", H5T_STD_I64LE, H5T_NATIVE_INT64, d.timestamp_ms.data(), K);
      w.dataset("/decisions/available", H5T_STD_U8LE, H5T_NATIVE_UINT8, d.available.data(), K, M);
      w.strings("/decisions/policy", d.policy);
    }
    w.close();
  }
  out.commit();
}

TraceSet read_traces(const std::string& path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  silence_hdf5();
  Reader r(path);
  const std::string format = r.string_attr("format");
  if (format != kTraceFormatName)
    fail(path, ": attribute /format is '", format, "', expected '", kTraceFormatName, "'");
  const int version = r.int_attr("version");
  if (version != kTraceFormatVersion)
    fail(path, ": unsupported format version ", version, " (this build reads version ", kTraceFormatVersion, ")");

  TraceSet t;
  t.source = r.string_attr("source");
  std::vector<hsize_t> dims;
  t.model_name = r.strings("/models/name", dims);
  const hsize_t M = dims[0];
  t.model_provider = r.strings_of_length("/models/provider", M);
  t.price_in_per_mtok = r.numbers_of_shape<double>("/models/price_in_per_mtok", H5T_FLOAT, H5T_NATIVE_DOUBLE, M);
  t.price_out_per_mtok = r.numbers_of_shape<double>("/models/price_out_per_mtok", H5T_FLOAT, H5T_NATIVE_DOUBLE, M);

  t.query_id = r.strings("/queries/id", dims);
  const hsize_t N = dims[0];
  t.query_task = r.strings_of_length("/queries/task", N);
  if (r.exists("/queries/text")) t.query_text = r.strings_of_length("/queries/text", N);
  if (r.exists("/queries/embedding")) {
    t.query_embedding = r.numbers<float>("/queries/embedding", H5T_FLOAT, H5T_NATIVE_FLOAT, 2, dims);
    if (dims[0] != N || dims[1] == 0)
      fail(path, ": dataset /queries/embedding has shape [", dims[0], " x ", dims[1], "], expected [", N, " x dim > 0]");
    t.embedding_dim = static_cast<int>(dims[1]);
    t.embedding_model = r.dataset_string_attr("/queries/embedding", "model");
    t.embedding_sha256 = r.dataset_string_attr("/queries/embedding", "sha256");
  }
  t.input_tokens = r.numbers_of_shape<int32_t>("/queries/input_tokens", H5T_INTEGER, H5T_NATIVE_INT32, N);
  t.split = r.numbers_of_shape<uint8_t>("/queries/split", H5T_INTEGER, H5T_NATIVE_UINT8, N);

  const bool has_outcomes = r.exists("/outcomes");
  const bool has_decisions = r.exists("/decisions");
  if (!has_outcomes && !has_decisions)
    fail(path, ": neither /outcomes nor /decisions is present (expected at least one)");
  if (has_outcomes) {
    t.quality = r.numbers_of_shape<float>("/outcomes/quality", H5T_FLOAT, H5T_NATIVE_FLOAT, N, M);
    t.cost_usd = r.numbers_of_shape<double>("/outcomes/cost_usd", H5T_FLOAT, H5T_NATIVE_DOUBLE, N, M);
    t.latency_s = r.numbers_of_shape<float>("/outcomes/latency_s", H5T_FLOAT, H5T_NATIVE_FLOAT, N, M);
    t.output_tokens = r.numbers_of_shape<int32_t>("/outcomes/output_tokens", H5T_INTEGER, H5T_NATIVE_INT32, N, M);
    t.answer = r.numbers_of_shape<int32_t>("/outcomes/answer", H5T_INTEGER, H5T_NATIVE_INT32, N, M);
    t.error = r.numbers_of_shape<uint8_t>("/outcomes/error", H5T_INTEGER, H5T_NATIVE_UINT8, N, M);
  }
  if (has_decisions) {
    Decisions& d = t.decisions;
    d.action = r.numbers<int32_t>("/decisions/action", H5T_INTEGER, H5T_NATIVE_INT32, 1, dims);
    const hsize_t K = dims[0];
    d.query = r.numbers_of_shape<int64_t>("/decisions/query", H5T_INTEGER, H5T_NATIVE_INT64, K);
    if (!r.exists("/decisions/propensity"))
      fail(path, ": dataset /decisions/propensity is missing: bandit logs need the logging policy's "
                 "probability of each logged action");
    d.propensity = r.numbers_of_shape<double>("/decisions/propensity", H5T_FLOAT, H5T_NATIVE_DOUBLE, K);
    d.quality = r.numbers_of_shape<float>("/decisions/quality", H5T_FLOAT, H5T_NATIVE_FLOAT, K);
    d.cost_usd = r.numbers_of_shape<double>("/decisions/cost_usd", H5T_FLOAT, H5T_NATIVE_DOUBLE, K);
    d.latency_s = r.numbers_of_shape<float>("/decisions/latency_s", H5T_FLOAT, H5T_NATIVE_FLOAT, K);
    d.timestamp_ms = r.numbers_of_shape<int64_t>("/decisions/timestamp_ms", H5T_INTEGER, H5T_NATIVE_INT64, K);
    d.available = r.numbers_of_shape<uint8_t>("/decisions/available", H5T_INTEGER, H5T_NATIVE_UINT8, K, M);
    d.policy = r.strings_of_length("/decisions/policy", K);
  }
  t.validate(path);
  return t;
}

}  // namespace conductor
