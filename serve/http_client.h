// A minimal blocking HTTP/1.1 client (Boost.Beast) for the gateway's provider calls.
//
// Plain http:// only. TLS providers (https://) are reached through a TLS-terminating proxy on
// loopback (e.g. `stunnel`, `envoy`, `nginx` with proxy_pass https://...); see docs/serving.md.
// Every call has one deadline covering resolve, connect, write and read; it is run on a private
// io_context, so it may be called from any number of threads at once.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace conductor::serve {

struct Url {
  std::string host;
  int port = 80;
  std::string path;  // base path without a trailing '/', e.g. "/v1" ("" for none)
  std::string text;  // as given
};

// Parses "http://host[:port][/path]". Throws conductor::Error for another scheme (naming the
// TLS-proxy workaround for https), a missing host or a bad port.
Url parse_url(const std::string& text);

enum class CallErrorKind { kTimeout, kConnect, kProtocol };

class CallError : public Error {
 public:
  CallError(CallErrorKind kind, const std::string& what) : Error(what), kind_(kind) {}
  CallErrorKind kind() const { return kind_; }

 private:
  CallErrorKind kind_;
};

struct ClientResponse {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string header(const std::string& name) const;
};

// POSTs `body` (application/json) to url.path + path. Throws CallError on timeout, connection
// failure or an unreadable response (never for an HTTP error status: that is in the response).
ClientResponse http_post_json(const Url& url, const std::string& path, const std::string& body,
                              const std::vector<std::pair<std::string, std::string>>& headers, double timeout_s,
                              std::size_t max_response_bytes = 64 << 20);

// A GET, same rules (tests and health checks).
ClientResponse http_get(const Url& url, const std::string& path, double timeout_s);

}  // namespace conductor::serve
