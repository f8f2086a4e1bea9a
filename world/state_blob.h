// The byte snapshot behind VectorEnv::save_state()/load_state(): raw values appended in native
// layout, read back in the same order. StateReader names the environment (`who`) in its errors, so
// every environment reports a short, truncated or oversized state with the same words.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/random.h"

namespace conductor {

struct StateWriter {
  std::string out;
  void put(const void* p, std::size_t n) { out.append(static_cast<const char*>(p), n); }
  template <class T>
  void pod(const T& v) { put(&v, sizeof(T)); }
  template <class T>
  void vec(const std::vector<T>& v) {
    pod<uint64_t>(v.size());
    if (!v.empty()) put(v.data(), v.size() * sizeof(T));
  }
  // An Rng stream: its four state words, the has-spare flag as one byte, the spare normal.
  void rng(const Rng& g) {
    const Rng::State st = g.state();
    put(st.s, sizeof(st.s));
    pod<uint8_t>(st.has_spare);
    pod(st.spare);
  }
};

struct StateReader {
  const std::string& in;
  const char* who;  // error prefix, e.g. "bandit"
  std::size_t pos = 0;

  void get(void* p, std::size_t n) {
    if (pos + n > in.size()) fail(who, ": environment state is truncated (", in.size(), " bytes)");
    std::memcpy(p, in.data() + pos, n);
    pos += n;
  }
  template <class T>
  T pod() {
    T v;
    get(&v, sizeof(T));
    return v;
  }
  // A vector written by StateWriter::vec; its length must match v's (the env's own size).
  template <class T>
  void vec(std::vector<T>& v, const char* what) {
    const uint64_t n = pod<uint64_t>();
    if (n != v.size())
      fail(who, ": environment state has ", n, " ", what, " entries, this environment ", v.size(),
           " (built from another config?)");
    if (n) get(v.data(), n * sizeof(T));
  }
  void rng(Rng& g) {
    Rng::State st;
    get(st.s, sizeof(st.s));
    st.has_spare = pod<uint8_t>() != 0;
    st.spare = pod<double>();
    g.set_state(st);
  }
  // Every byte must have been read.
  void finish() const {
    if (pos != in.size()) fail(who, ": environment state has ", in.size() - pos, " trailing bytes");
  }
};

}  // namespace conductor
