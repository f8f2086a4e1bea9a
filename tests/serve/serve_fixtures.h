// Shared fixtures of the serve tests: a small synthetic conductor world, a seeded random MLP policy,
// and loopback HTTP helpers (raw sockets for misbehaving clients).
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio.hpp>
#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/random.h"
#include "envs/conductor_env.h"
#include "policies/mlp_io.h"
#include "serve/conductor_world.h"
#include "serve/http_client.h"

namespace conductor::serve::testing {

// Writing to a socket the server closed must fail with EPIPE, not kill the test binary.
inline const int kIgnoreSigpipe = (std::signal(SIGPIPE, SIG_IGN), 0);

struct TestWorld {
  ConductorEnvConfig config;
  std::shared_ptr<const ConductorWorld> world;
  json spec;
  std::shared_ptr<ConductorLiveWorld> live;
};

// A synthetic world (traces/synth.h, default catalog) of `queries` queries; `extra` is YAML appended
// to the env mapping (e.g. "pool: {randomize: true, min_size: 2}\n").
inline TestWorld make_test_world(int queries, int max_steps, const std::string& extra = "",
                                 const std::string& split = "test") {
  const std::string yaml = "synthetic: {queries: " + std::to_string(queries) +
                           ", seed: 11}\nsplit: " + split + "\nmode: sequential\nmax_steps: " +
                           std::to_string(max_steps) + "\nfeatures: {hash_dim: 32, ngram_max: 2}\n" + extra;
  ConfigDoc doc = ConfigDoc::load_string(yaml, "test-env.yaml");
  ConfigReader r = doc.root();
  TestWorld t;
  t.config = ConductorEnvConfig::parse(r);
  t.world = ConductorWorld::build(t.config);
  t.spec = world_spec_from_env(*t.world, t.config);
  t.live = ConductorLiveWorld::from_spec(t.spec, "test-spec");
  return t;
}

// An MLP with seeded random weights (uniform in [-scale, scale]); biases favour no action.
inline std::vector<NamedTensor> random_mlp_tensors(const MlpSpec& spec, uint64_t seed, double scale = 0.5) {
  Rng rng(seed);
  std::vector<NamedTensor> out;
  int in = spec.obs_dim;
  std::vector<int> outs = spec.hidden;
  outs.push_back(spec.n_actions);
  for (std::size_t l = 0; l < outs.size(); ++l) {
    NamedTensor w{"actor." + std::to_string(2 * l) + ".weight", {outs[l], in}, {}};
    for (int i = 0; i < outs[l] * in; ++i) w.data.push_back(static_cast<float>(rng.uniform(-scale, scale)));
    NamedTensor b{"actor." + std::to_string(2 * l) + ".bias", {outs[l]}, {}};
    for (int i = 0; i < outs[l]; ++i) b.data.push_back(static_cast<float>(rng.uniform(-scale, scale)));
    out.push_back(std::move(w));
    out.push_back(std::move(b));
    in = outs[l];
  }
  return out;
}

inline MlpSpec mlp_spec_for(const LiveWorld& w, std::vector<int> hidden = {64, 64}) {
  MlpSpec s;
  s.obs_dim = w.obs_dim();
  s.n_actions = w.n_actions();
  s.hidden = std::move(hidden);
  s.activation = "tanh";
  return s;
}

inline Url loopback(int port) {
  Url u;
  u.host = "127.0.0.1";
  u.port = port;
  return u;
}

inline ClientResponse post(int port, const std::string& path, const std::string& body, double timeout_s = 20.0) {
  return http_post_json(loopback(port), path, body, {}, timeout_s);
}
inline ClientResponse get(int port, const std::string& path) { return http_get(loopback(port), path, 20.0); }

// A raw TCP connection with a receive timeout, for clients that misbehave on purpose.
class RawClient {
 public:
  explicit RawClient(int port, double recv_timeout_s = 10.0) : socket_(ioc_) {
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
    timeval tv{};
    tv.tv_sec = static_cast<long>(recv_timeout_s);
    tv.tv_usec = static_cast<long>((recv_timeout_s - tv.tv_sec) * 1e6);
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  // Returns false when the peer has closed or reset the connection.
  bool send(const std::string& bytes) {
    boost::system::error_code ec;
    boost::asio::write(socket_, boost::asio::buffer(bytes), ec);
    return !ec;
  }
  // Reads until the peer closes (or the receive timeout); returns what arrived.
  std::string read_all(bool* timed_out = nullptr) {
    std::string out;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(socket_.native_handle(), buf, sizeof buf, 0);
      if (n > 0) {
        out.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (timed_out) *timed_out = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
      return out;
    }
  }
  void close() {
    boost::system::error_code ec;
    socket_.close(ec);
  }
  // Closes with RST instead of FIN (SO_LINGER 0): the most abrupt disconnect.
  void reset() {
    linger l{1, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
  }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
};

inline std::string http_request(const std::string& method, const std::string& path, const std::string& body,
                                bool keep_alive = false) {
  return method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + (keep_alive ? "" : "\r\nConnection: close") + "\r\n\r\n" + body;
}

}  // namespace conductor::serve::testing
