// The gateway against replay providers of each API on loopback (optionally over TLS with a test CA
// made by the `openssl` binary): the rig production_test.cpp and the gateway streaming and keys
// tests build.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "serve/api_keys.h"
#include "tests/serve/serve_fixtures.h"
#include "tests/test_util.h"

namespace conductor::serve::testing {

inline std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ---------------------------------------------------------------------------------------------
// Certificates: a CA, a server certificate for localhost / 127.0.0.1 signed by it, and one for
// another host name, made once per test binary.
struct Certs {
  std::string dir, ca, cert, key, other_cert, other_key;
};

inline const Certs& certs() {
  static const Certs c = [] {
    Certs c;
    c.dir = conductor::testing::temp_dir() + "/certs";
    std::filesystem::create_directories(c.dir);
    const std::string d = c.dir;
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
    const std::string cmd =
        "cd '" + d + "' && openssl req -x509" + ec + "-keyout ca.key -out ca.pem -days 2 -subj '/CN=conductor test CA' && " +
        "openssl req" + ec + "-keyout srv.key -out srv.csr -subj '/CN=localhost' && " +
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf && " +
        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext.cnf && " +
        "openssl req" + ec + "-keyout other.key -out other.csr -subj '/CN=other.example' && " +
        "printf 'subjectAltName=DNS:other.example\\n' > other.cnf && " +
        "openssl x509 -req -in other.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out other.pem -days 2 -extfile other.cnf";
    const int rc = std::system(("(" + cmd + ") > '" + d + "/openssl.log' 2>&1").c_str());
    if (rc != 0) ADD_FAILURE() << "openssl failed: " << read_all(d + "/openssl.log");
    c.ca = d + "/ca.pem";
    c.cert = d + "/srv.pem";
    c.key = d + "/srv.key";
    c.other_cert = d + "/other.pem";
    c.other_key = d + "/other.key";
    return c;
  }();
  return c;
}


struct RigOptions {
  ApiKind api = ApiKind::kOpenAI;
  bool tls = true;
  bool trust_ca = true;
  int max_steps = 1;
  std::string gateway_extra;  // YAML lines of the gateway section
  ExplorationConfig exploration;
  DecisionLogConfig log;
  std::string require_key;  // the replay providers' key ("" = none)
  std::string api_key;      // the gateway's key (api_key_env), "" = none
  std::shared_ptr<ApiKeys> keys;  // client API keys of the service (null = none)
};

inline std::unique_ptr<GatewayRig> make_rig(const RigOptions& ro, ReplayOptions ropt = {}) {
  auto r = std::make_unique<GatewayRig>();
  r->t = testing::make_test_world(300, ro.max_steps);
  const MlpSpec spec = testing::mlp_spec_for(*r->t.live);
  auto policy = std::shared_ptr<const Policy>(make_mlp_policy(spec, testing::random_mlp_tensors(spec, 42, 0.3)));
  r->router = std::make_shared<Router>(policy, r->t.live, "test-model");
  ropt.speedup = 1000.0;
  ropt.api = ro.api;
  if (!ro.require_key.empty()) ropt.require_key = ro.require_key;
  r->replay = std::make_unique<ReplayProviders>(*r->t.world->traces, ropt);
  HttpServerOptions so;
  so.port = 0;
  if (ro.tls) {
    so.tls_cert_file = certs().cert;
    so.tls_key_file = certs().key;
  }
  r->replay_server = std::make_unique<HttpServer>(so, [rp = r->replay.get()](HttpRequest& q, Responder s) {
    rp->handle(q, std::move(s));
  });
  r->replay->attach(r->replay_server.get());
  r->replay_server->start();
  const std::string base = std::string(ro.tls ? "https" : "http") + "://127.0.0.1:" +
                           std::to_string(r->replay_server->port()) + (ro.api == ApiKind::kGemini ? "/v1beta" : "/v1");
  std::string yaml = "threads: 2\ncall_timeout_s: 5\nretries: 1\nbackoff_initial_s: 0.01\n" + ro.gateway_extra + "providers:\n";
  for (const auto& w : r->t.live->workers()) {
    yaml += "  - {worker: " + w + ", base_url: \"" + base + "\", api: " + api_name(ro.api);
    if (ro.tls && ro.trust_ca) yaml += ", ca_file: \"" + certs().ca + "\"";
    if (!ro.api_key.empty()) yaml += ", api_key_env: CONDUCTOR_TEST_PROVIDER_KEY";
    yaml += "}\n";
  }
  if (!ro.api_key.empty()) ::setenv("CONDUCTOR_TEST_PROVIDER_KEY", ro.api_key.c_str(), 1);
  ConfigDoc doc = ConfigDoc::load_string(yaml, "serve.yaml");
  r->gateway = std::make_shared<Gateway>(r->router, GatewayConfig::parse(doc.root()));
  HttpServerOptions o;
  o.port = 0;
  r->service = std::make_unique<ConductorService>(r->router, r->gateway, o, ro.exploration, ro.log, ro.keys);
  r->service->start();
  return r;
}

inline int clean_query(const TraceSet& T, int skip = 0) {
  for (std::size_t q = 0; q < T.n_queries(); ++q) {
    if (T.split[q] != 2) continue;
    bool ok = true;
    for (std::size_t m = 0; m < T.n_models(); ++m) ok = ok && T.error[T.at(q, m)] == kOk && std::isfinite(T.quality[T.at(q, m)]);
    if (ok && skip-- == 0) return static_cast<int>(q);
  }
  return -1;
}

inline std::string chat_body(const std::string& text, const json& conductor = nullptr) {
  json j = {{"model", "conductor"},
            {"messages", {{{"role", "system"}, {"content", "be brief"}}, {{"role", "user"}, {"content", text}}}}};
  if (!conductor.is_null()) j["conductor"] = conductor;
  return j.dump();
}

// A seeded random MLP's router over a synthetic world: the tests' stand-in for a trained export.
struct RandomRouter {
  conductor::testing::TestWorld t;
  std::shared_ptr<Router> router;
};

inline RandomRouter random_router(int queries, int max_steps, uint64_t seed = 42, double scale = 0.3) {
  RandomRouter r;
  r.t = make_test_world(queries, max_steps);
  const MlpSpec spec = mlp_spec_for(*r.t.live);
  r.router = std::make_shared<Router>(
      std::shared_ptr<const Policy>(make_mlp_policy(spec, random_mlp_tensors(spec, seed, scale))), r.t.live, "v");
  return r;
}

// A gateway that sends every worker's calls to `base_url` (`head`: gateway YAML before `providers`)
// and the service in front of it, started on a loopback port.
struct GatewayService {
  std::shared_ptr<Gateway> gateway;
  std::unique_ptr<ConductorService> service;
  int port() const { return service->port(); }
};

inline GatewayService gateway_service(const std::shared_ptr<Router>& router, const std::string& head,
                                      const std::string& base_url) {
  std::string yaml = head + "providers:\n";
  for (const auto& w : router->world().workers()) yaml += "  - {worker: " + w + ", base_url: \"" + base_url + "\"}\n";
  GatewayService g;
  g.gateway = std::make_shared<Gateway>(router, GatewayConfig::parse(ConfigDoc::load_string(yaml, "s.yaml").root()));
  HttpServerOptions so;
  so.port = 0;
  g.service = std::make_unique<ConductorService>(router, g.gateway, so);
  g.service->start();
  return g;
}

}  // namespace conductor::serve::testing
