// The gateway's HTTP/1.1 client (Boost.Beast): asynchronous keep-alive connection pools over plain
// TCP or TLS (OpenSSL), and blocking helpers on top of them for tools and tests.
//
// TLS: certificate and host-name verification are always on. The trust store is the system's
// (OpenSSL's default paths, e.g. /etc/ssl/certs on Debian) unless `ca_file` names a PEM bundle to
// trust instead. SNI carries the host name; an IP-address host is checked against the
// certificate's IP entries. A failed verification is a CallErrorKind::kTls error whose message
// names the host and OpenSSL's reason (e.g. "self-signed certificate in certificate chain").
//
// A ConnectionPool belongs to one origin (scheme, host, port). async_request() takes an idle
// connection when there is one (else opens one: resolve, connect, TLS handshake), writes the
// request, reads the response, and returns the connection to the pool when the server keeps it
// alive. A reused connection that the server had closed in the meantime (nothing of the response
// arrived) is replaced by a fresh one once, transparently. Every request has one deadline covering
// all of this. Completion runs on the pool's io_context threads; nothing blocks a thread.
//
// Streaming (server-sent events from a provider): with `on_data`, a 200 response's body is handed
// over piece by piece as it arrives (on_data runs on the connection's strand, in order) and the
// final ClientResult carries an empty body; any other status is read whole as usual. Every call can
// be cancelled (the returned CallCancel, from any thread): the connection is closed and `done`
// gets CallErrorKind::kCancelled (unless the call had already completed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace boost::asio {
class io_context;
}

namespace conductor::serve {

struct Url {
  bool tls = false;  // https
  std::string host;
  int port = 80;     // default 80 (http) or 443 (https)
  std::string path;  // base path without a trailing '/', e.g. "/v1" ("" for none)
  std::string text;  // as given
  std::string origin() const;  // "https://host:port"
};

// Parses "http[s]://host[:port][/path]". Throws conductor::Error for another scheme, a missing
// host, a bad port, or a query string / fragment (base URLs take none).
Url parse_url(const std::string& text);

struct TlsClientConfig {
  std::string ca_file;  // PEM bundle to trust instead of the system store ("" = system store)
};

enum class CallErrorKind { kTimeout, kConnect, kTls, kProtocol, kCancelled };
// "timeout", "connect", "tls", "bad_response", "cancelled"
const char* call_error_kind_name(CallErrorKind k);

class CallError : public Error {
 public:
  CallError(CallErrorKind kind, const std::string& what) : Error(what), kind_(kind) {}
  CallErrorKind kind() const { return kind_; }

 private:
  CallErrorKind kind_;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

struct ClientRequest {
  std::string method = "POST";  // "POST" | "GET"
  std::string target;           // path and query, e.g. "/v1/chat/completions"
  std::string body;             // sent as application/json when non-empty
  Headers headers;              // extra headers (never logged: they may hold API keys)
};

struct ClientResponse {
  int status = 0;
  std::string body;
  Headers headers;  // names lower-cased
  std::string header(const std::string& name) const;
};

struct ClientResult {
  bool ok = false;                     // a response arrived (whatever its status)
  ClientResponse response;
  CallErrorKind error_kind = CallErrorKind::kProtocol;
  std::string error;                   // when !ok: what failed, naming host:port and the stage
};

struct PoolStats {
  uint64_t connections_opened = 0;
  uint64_t requests = 0;
  uint64_t reused = 0;                 // requests served on a kept-alive connection
  int idle = 0;                        // connections waiting in the pool now
};

class ConnectionPool {
 public:
  // `max_idle`: connections kept alive for reuse (more are closed after their response);
  // `idle_timeout_s`: an idle connection older than this is closed instead of reused.
  // Throws conductor::Error when the TLS trust store (ca_file) cannot be loaded.
  ConnectionPool(boost::asio::io_context& ioc, const Url& origin, const TlsClientConfig& tls = {}, int max_idle = 64,
                 double idle_timeout_s = 30.0);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  using Callback = std::function<void(ClientResult)>;
  using DataCallback = std::function<void(std::string piece)>;
  using CallCancel = std::function<void()>;
  // Thread-safe. `done` is called exactly once, on one of the io_context's threads. With `on_data`
  // a 200 body is streamed to it (see above). The returned function cancels the call.
  CallCancel async_request(ClientRequest request, double timeout_s, std::size_t max_response_bytes, Callback done,
                           DataCallback on_data = nullptr);

  PoolStats stats() const;
  const Url& origin() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Blocking forms on a private io_context (one connection, closed after the response): tools, tests
// and health checks. Throw CallError on timeout, connection, TLS or protocol failures (never for an
// HTTP error status: that is in the response).
ClientResponse http_post_json(const Url& url, const std::string& path, const std::string& body, const Headers& headers,
                              double timeout_s, std::size_t max_response_bytes = 64 << 20,
                              const TlsClientConfig& tls = {});
ClientResponse http_get(const Url& url, const std::string& path, double timeout_s, const TlsClientConfig& tls = {});

}  // namespace conductor::serve
