// Shared fixtures of the serve tests: the policy fixtures (tests/policies/policy_fixtures.h: a small
// synthetic conductor world, a seeded random MLP policy) and loopback HTTP helpers (raw sockets for
// misbehaving clients).
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio.hpp>
#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "policies/export.h"
#include "serve/gateway.h"
#include "serve/http_client.h"
#include "serve/http_server.h"
#include "serve/sim/replay_server.h"
#include "serve/router.h"
#include "serve/service.h"
#include "tests/policies/policy_fixtures.h"

namespace conductor::serve::testing {

// Writing to a socket the server closed must fail with EPIPE, not kill the test binary.
inline const int kIgnoreSigpipe = (std::signal(SIGPIPE, SIG_IGN), 0);

using conductor::testing::TestWorld;
using conductor::testing::make_test_world;
using conductor::testing::random_mlp_tensors;
using conductor::testing::mlp_spec_for;
using conductor::testing::observe;

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
  // What one read returns ("" when the peer closed, reset, or the receive timeout passed).
  std::string read_some() {
    char buf[4096];
    const ssize_t n = ::recv(socket_.native_handle(), buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
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

// A gateway test's parts: the world, the router, replay providers behind their HTTP server, the
// gateway and the service in front (gateway_test.cpp and production_test.cpp build them).
struct GatewayRig {
  conductor::testing::TestWorld t;
  std::shared_ptr<Router> router;
  std::unique_ptr<ReplayProviders> replay;
  std::unique_ptr<HttpServer> replay_server;
  std::shared_ptr<Gateway> gateway;
  std::unique_ptr<ConductorService> service;
  int port() const { return service->port(); }
};

// An exported random MLP over a synthetic world of `queries` queries (`env_extra`: YAML added to its
// env mapping), written to `dir`, loaded the way `conductor serve --export DIR` loads it and served
// on a loopback port (no decision log).
struct Served {
  conductor::testing::TestWorld t;
  ExportContents contents;
  LoadedExport loaded;
  std::shared_ptr<Router> router;
  std::unique_ptr<ConductorService> service;
  int port() const { return service->port(); }
};

inline std::unique_ptr<Served> serve_export(int queries, int max_steps, const std::string& dir,
                                            const std::string& env_extra = "") {
  auto s = std::make_unique<Served>();
  s->t = conductor::testing::make_test_world(queries, max_steps, env_extra);
  const MlpSpec spec = conductor::testing::mlp_spec_for(*s->t.live);
  s->contents.policy = mlp_exported_policy(spec, conductor::testing::random_mlp_tensors(spec, 42, 0.3));
  s->contents.world = s->t.spec;
  s->contents.env_id = "conductor";
  for (const auto& a : s->t.live->actions()) s->contents.action_names.push_back(a.name);
  write_export(dir, s->contents);
  // What `conductor serve --export DIR` does.
  s->loaded = load_export_bundle(dir);
  auto world = ConductorLiveWorld::from_spec(s->loaded.manifest["world"], dir + "/manifest.json");
  s->router = std::make_shared<Router>(s->loaded.policy, world, s->loaded.model_version);
  HttpServerOptions o;
  o.port = 0;
  o.threads = 2;
  o.read_timeout_s = 0.5;
  o.body_limit_bytes = 1 << 20;
  s->service = std::make_unique<ConductorService>(s->router, nullptr, o);
  s->service->start();
  return s;
}

}  // namespace conductor::serve::testing
