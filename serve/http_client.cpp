#include "serve/http_client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <optional>

namespace conductor::serve {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string ClientResponse::header(const std::string& name) const {
  for (const auto& kv : headers)
    if (kv.first == name) return kv.second;
  return "";
}

Url parse_url(const std::string& text) {
  Url u;
  u.text = text;
  const std::string http_prefix = "http://";
  if (text.rfind("https://", 0) == 0)
    fail("URL '", text, "': https is not supported by the built-in client; run a TLS-terminating proxy on "
         "loopback (stunnel, envoy, nginx) and point base_url at its http:// address");
  if (text.rfind(http_prefix, 0) != 0) fail("URL '", text, "': expected http://host[:port][/path]");
  std::string rest = text.substr(http_prefix.size());
  const auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!u.path.empty() && u.path.back() == '/') u.path.pop_back();
  if (hostport.empty()) fail("URL '", text, "': missing host");
  const auto colon = hostport.rfind(':');
  if (colon != std::string::npos && hostport.find(']') == std::string::npos) {
    u.host = hostport.substr(0, colon);
    const std::string p = hostport.substr(colon + 1);
    if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos)
      fail("URL '", text, "': bad port '", p, "'");
    u.port = std::stoi(p);
    if (u.port < 1 || u.port > 65535) fail("URL '", text, "': port ", u.port, " out of range [1, 65535]");
  } else {
    u.host = hostport;
  }
  if (u.host.empty()) fail("URL '", text, "': missing host");
  return u;
}

namespace {

ClientResponse request(const Url& url, http::verb verb, const std::string& path, const std::string& body,
                       const std::vector<std::pair<std::string, std::string>>& headers, double timeout_s,
                       std::size_t max_response_bytes) {
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  beast::flat_buffer buffer;
  http::request<http::string_body> req{verb, url.path + path, 11};
  req.set(http::field::host, url.host + ":" + std::to_string(url.port));
  req.set(http::field::user_agent, "conductor-gateway");
  if (verb == http::verb::post) req.set(http::field::content_type, "application/json");
  for (const auto& h : headers) req.set(h.first, h.second);
  req.body() = body;
  req.keep_alive(false);
  req.prepare_payload();
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_response_bytes);

  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(timeout_s));
  std::optional<beast::error_code> result;
  const char* stage = "resolve";
  auto finish = [&](beast::error_code ec) { result = ec; };

  net::steady_timer resolve_timer(ioc, deadline);
  resolve_timer.async_wait([&](beast::error_code ec) {
    if (!ec) resolver.cancel();
  });
  resolver.async_resolve(url.host, std::to_string(url.port), [&](beast::error_code ec, tcp::resolver::results_type res) {
    resolve_timer.cancel();
    if (ec) return finish(ec == net::error::operation_aborted ? beast::error::timeout : ec);
    stage = "connect";
    stream.expires_at(deadline);
    stream.async_connect(res, [&](beast::error_code ec2, const tcp::endpoint&) {
      if (ec2) return finish(ec2);
      stage = "write";
      http::async_write(stream, req, [&](beast::error_code ec3, std::size_t) {
        if (ec3) return finish(ec3);
        stage = "read";
        http::async_read(stream, buffer, parser, [&](beast::error_code ec4, std::size_t) { finish(ec4); });
      });
    });
  });
  ioc.run();
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);

  const std::string where = url.host + ":" + std::to_string(url.port) + url.path + path;
  if (!result) throw CallError(CallErrorKind::kProtocol, "call to " + where + " ended without a result");
  const beast::error_code ec = *result;
  if (ec == beast::error::timeout || (std::chrono::steady_clock::now() >= deadline && ec))
    throw CallError(CallErrorKind::kTimeout, "call to " + where + " timed out after " + std::to_string(timeout_s) +
                                                 " s (" + stage + ")");
  if (ec) {
    const bool connect = std::string(stage) == "resolve" || std::string(stage) == "connect";
    throw CallError(connect ? CallErrorKind::kConnect : CallErrorKind::kProtocol,
                    "call to " + where + " failed during " + stage + ": " + ec.message());
  }
  auto msg = parser.release();
  ClientResponse out;
  out.status = static_cast<int>(msg.result_int());
  out.body = std::move(msg.body());
  for (const auto& f : msg) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers.emplace_back(std::move(name), std::string(f.value()));
  }
  return out;
}

}  // namespace

ClientResponse http_post_json(const Url& url, const std::string& path, const std::string& body,
                              const std::vector<std::pair<std::string, std::string>>& headers, double timeout_s,
                              std::size_t max_response_bytes) {
  return request(url, http::verb::post, path, body, headers, timeout_s, max_response_bytes);
}

ClientResponse http_get(const Url& url, const std::string& path, double timeout_s) {
  return request(url, http::verb::get, path, "", {}, timeout_s, 64 << 20);
}

}  // namespace conductor::serve
