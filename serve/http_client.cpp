#include "serve/http_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>

namespace conductor::serve {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

std::string ClientResponse::header(const std::string& name) const {
  for (const auto& kv : headers)
    if (kv.first == name) return kv.second;
  return "";
}

const char* call_error_kind_name(CallErrorKind k) {
  switch (k) {
    case CallErrorKind::kTimeout: return "timeout";
    case CallErrorKind::kConnect: return "connect";
    case CallErrorKind::kTls: return "tls";
    case CallErrorKind::kProtocol: return "bad_response";
    case CallErrorKind::kCancelled: return "cancelled";
  }
  return "bad_response";
}

std::string Url::origin() const { return std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(port); }

Url parse_url(const std::string& text) {
  Url u;
  u.text = text;
  std::string rest;
  if (text.rfind("https://", 0) == 0) {
    u.tls = true;
    u.port = 443;
    rest = text.substr(8);
  } else if (text.rfind("http://", 0) == 0) {
    rest = text.substr(7);
  } else {
    fail("URL '", text, "': expected http://host[:port][/path] or https://host[:port][/path]");
  }
  if (rest.find_first_of("?#") != std::string::npos)
    fail("URL '", text, "': a base URL takes no query string or fragment");
  const auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!u.path.empty() && u.path.back() == '/') u.path.pop_back();
  if (hostport.empty()) fail("URL '", text, "': missing host");
  if (hostport.find('@') != std::string::npos)
    fail("URL '", text, "': credentials in the URL are not supported (use api_key_env)");
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
  if (u.host.size() > 2 && u.host.front() == '[' && u.host.back() == ']') u.host = u.host.substr(1, u.host.size() - 2);
  if (u.host.empty()) fail("URL '", text, "': missing host");
  return u;
}

namespace {

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::max(0.0, s)));
}

bool is_ip_address(const std::string& host) {
  beast::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

std::shared_ptr<ssl::context> make_client_context(const TlsClientConfig& c) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  ctx->set_verify_mode(ssl::verify_peer);
  beast::error_code ec;
  if (c.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) fail("TLS: cannot load the system's trusted certificates: ", ec.message());
  } else {
    ctx->load_verify_file(c.ca_file, ec);
    if (ec) fail("TLS: cannot load ca_file '", c.ca_file, "' (expected PEM certificates): ", ec.message());
  }
  return ctx;
}

// One connection to the pool's origin, with its own strand: every operation on it (and its timers)
// runs serialized there, whichever io_context thread picks it up.
struct Conn {
  using Strand = net::strand<net::io_context::executor_type>;
  Conn(net::io_context& ioc, ssl::context* tls) : strand(net::make_strand(ioc)) {
    if (tls) secure.emplace(strand, *tls);
    else plain.emplace(strand);
  }
  Strand strand;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  Clock::time_point idle_since;

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
  void close() {
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().socket().close(ignored);
  }
};

}  // namespace

struct ConnectionPool::Impl : std::enable_shared_from_this<ConnectionPool::Impl> {
  Impl(net::io_context& io, Url u, const TlsClientConfig& tls_config, int max_idle_conns, double idle_s)
      : ioc(io), origin(std::move(u)), max_idle(max_idle_conns), idle_timeout(seconds(idle_s)) {
    if (origin.tls) tls = make_client_context(tls_config);
    host_header = origin.host;
    if (origin.host.find(':') != std::string::npos) host_header = "[" + origin.host + "]";  // IPv6 literal
    if (origin.port != (origin.tls ? 443 : 80)) host_header += ":" + std::to_string(origin.port);
  }

  net::io_context& ioc;
  Url origin;
  std::string host_header;
  std::shared_ptr<ssl::context> tls;
  int max_idle;
  Clock::duration idle_timeout;
  std::mutex mu;
  std::deque<std::shared_ptr<Conn>> idle;  // most recently used at the back
  std::atomic<uint64_t> opened{0}, requests{0}, reused{0};

  // An idle connection young enough to reuse, or null.
  std::shared_ptr<Conn> take_idle() {
    std::lock_guard<std::mutex> lk(mu);
    const auto now = Clock::now();
    while (!idle.empty()) {
      auto c = idle.back();
      idle.pop_back();
      if (now - c->idle_since <= idle_timeout && c->lowest().socket().is_open()) return c;
      net::post(c->strand, [c] { c->close(); });
    }
    return nullptr;
  }
  void give_back(std::shared_ptr<Conn> c) {
    c->idle_since = Clock::now();
    std::lock_guard<std::mutex> lk(mu);
    if (static_cast<int>(idle.size()) < max_idle) {
      idle.push_back(std::move(c));
      return;
    }
    c->close();
  }
};

namespace {

// One request: acquire a connection (reuse or open), write, read, hand the connection back.
struct Op : std::enable_shared_from_this<Op> {
  std::shared_ptr<ConnectionPool::Impl> pool;
  Clock::time_point deadline;
  double timeout_s = 0;
  std::size_t max_bytes = 0;
  ConnectionPool::Callback done;
  ConnectionPool::DataCallback on_data;  // streaming: a 200 body piece by piece
  http::request<http::string_body> msg;
  std::shared_ptr<Conn> conn;  // replaced only on the current connection's strand, under conn_mu
  std::mutex conn_mu;
  std::atomic<bool> cancelled{false};
  bool reused = false;
  bool retried_stale = false;
  bool finished = false;
  const char* stage = "connect";
  std::optional<http::response_parser<http::string_body>> parser;
  std::optional<tcp::resolver> resolver;
  std::optional<net::steady_timer> resolve_timer;

  std::string where() const { return pool->origin.origin() + std::string(msg.target()); }

  void start() {
    auto idle = pool->take_idle();
    {
      std::lock_guard<std::mutex> lk(conn_mu);
      conn = idle;
    }
    if (conn) {
      reused = true;
      net::dispatch(conn->strand, [self = shared_from_this()] { self->send(); });
    } else {
      open();
    }
  }

  // From any thread: closes the connection on its strand and completes the call as cancelled.
  void cancel() {
    cancelled.store(true);
    std::shared_ptr<Conn> c;
    {
      std::lock_guard<std::mutex> lk(conn_mu);
      c = conn;
    }
    if (!c) return;  // start() has not run yet: it sees the flag
    net::post(c->strand, [self = shared_from_this(), c] {
      if (self->conn == c && !self->finished) self->fail(CallErrorKind::kCancelled, "cancelled by the gateway");
    });
  }

  void open() {
    reused = false;
    {
      std::lock_guard<std::mutex> lk(conn_mu);
      conn = std::make_shared<Conn>(pool->ioc, pool->tls.get());
    }
    if (cancelled.load()) return fail(CallErrorKind::kCancelled, "cancelled by the gateway");
    pool->opened.fetch_add(1, std::memory_order_relaxed);
    net::dispatch(conn->strand, [self = shared_from_this()] { self->resolve(); });
  }

  void resolve() {
    stage = "resolve";
    if (Clock::now() >= deadline) return fail_timeout();
    resolver.emplace(conn->strand);
    resolve_timer.emplace(conn->strand, deadline);
    auto self = shared_from_this();
    resolve_timer->async_wait([self](beast::error_code ec) {
      if (!ec) self->resolver->cancel();
    });
    resolver->async_resolve(pool->origin.host, std::to_string(pool->origin.port),
                            [self](beast::error_code ec, tcp::resolver::results_type results) {
                              self->resolve_timer->cancel();
                              if (ec == net::error::operation_aborted) return self->fail_timeout();
                              if (ec) return self->fail(CallErrorKind::kConnect, ec.message());
                              self->connect(results);
                            });
  }

  void connect(const tcp::resolver::results_type& results) {
    stage = "connect";
    conn->lowest().expires_at(deadline);
    conn->lowest().async_connect(results, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
      if (ec == beast::error::timeout) return self->fail_timeout();
      if (ec) return self->fail(CallErrorKind::kConnect, ec.message());
      beast::error_code ignored;
      self->conn->lowest().socket().set_option(tcp::no_delay(true), ignored);
      if (self->conn->secure) return self->handshake();
      self->send();
    });
  }

  void handshake() {
    stage = "TLS handshake";
    SSL* s = conn->secure->native_handle();
    const std::string& host = pool->origin.host;
    if (is_ip_address(host)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), host.c_str());
    } else {
      SSL_set_tlsext_host_name(s, host.c_str());  // SNI
      SSL_set1_host(s, host.c_str());             // the certificate must name this host
    }
    conn->lowest().expires_at(deadline);
    conn->secure->async_handshake(ssl::stream_base::client, [self = shared_from_this()](beast::error_code ec) {
      if (ec == beast::error::timeout) return self->fail_timeout();
      if (ec) {
        const long v = SSL_get_verify_result(self->conn->secure->native_handle());
        std::string why = v != X509_V_OK ? std::string("certificate verification failed: ") +
                                               X509_verify_cert_error_string(v)
                                         : ec.message();
        return self->fail(CallErrorKind::kTls, why + " (the trust store is " +
                                                   (self->pool->tls ? std::string("ca_file or the system store")
                                                                    : std::string("the system store")) +
                                                   "; set the provider's ca_file to trust a private CA)");
      }
      self->send();
    });
  }

  template <class F>
  void with_stream(F&& f) {
    if (conn->secure) f(*conn->secure);
    else f(*conn->plain);
  }

  void send() {
    stage = "write";
    if (cancelled.load()) return fail(CallErrorKind::kCancelled, "cancelled by the gateway");
    if (Clock::now() >= deadline) return fail_timeout();
    conn->lowest().expires_at(deadline);
    parser.emplace();
    parser->body_limit(max_bytes);
    auto self = shared_from_this();
    with_stream([&](auto& stream) {
      http::async_write(stream, msg, [self](beast::error_code ec, std::size_t) {
        if (ec) return self->io_error(ec);
        if (self->on_data) return self->read_head();
        self->read();
      });
    });
  }

  void read() {
    stage = "read";
    auto self = shared_from_this();
    with_stream([&](auto& stream) {
      http::async_read(stream, conn->buffer, *parser, [self](beast::error_code ec, std::size_t) {
        if (ec) return self->io_error(ec);
        self->complete();
      });
    });
  }

  // Streaming: the head first; a 200 body then goes to on_data as it arrives.
  void read_head() {
    stage = "read";
    auto self = shared_from_this();
    with_stream([&](auto& stream) {
      http::async_read_header(stream, conn->buffer, *parser, [self](beast::error_code ec, std::size_t) {
        if (ec) return self->io_error(ec);
        if (self->parser->get().result_int() != 200) return self->read();
        self->read_piece();
      });
    });
  }

  void read_piece() {
    if (hand_over_body()) return;
    auto self = shared_from_this();
    with_stream([&](auto& stream) {
      http::async_read_some(stream, conn->buffer, *parser, [self](beast::error_code ec, std::size_t) {
        if (ec) return self->io_error(ec);
        self->read_piece();
      });
    });
  }

  // Gives what the parser holds of the body to on_data; true when the body is complete.
  bool hand_over_body() {
    if (finished) return true;
    std::string piece;
    piece.swap(parser->get().body());
    if (!piece.empty()) on_data(std::move(piece));
    if (finished) return true;  // on_data cancelled the call
    if (!parser->is_done()) return false;
    complete();
    return true;
  }

  void io_error(beast::error_code ec) {
    if (finished) return;
    if (ec == beast::error::timeout) return fail_timeout();
    // A kept-alive connection the server closed while it sat idle: nothing of the response came
    // back, so the request was not processed; open a fresh connection once.
    if (reused && !retried_stale && !parser->got_some() && Clock::now() < deadline) {
      retried_stale = true;
      conn->close();
      return open();
    }
    fail(CallErrorKind::kProtocol, ec.message());
  }

  void complete() {
    auto res = parser->release();
    ClientResult r;
    r.ok = true;
    r.response.status = static_cast<int>(res.result_int());
    r.response.body = std::move(res.body());
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.response.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    if (reused) pool->reused.fetch_add(1, std::memory_order_relaxed);
    if (res.keep_alive() && conn->buffer.size() == 0) {
      conn->lowest().expires_never();
      pool->give_back(std::move(conn));
    } else {
      conn->close();
    }
    deliver(std::move(r));
  }

  void fail_timeout() {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", timeout_s);
    fail(CallErrorKind::kTimeout, std::string("timed out after ") + buf + " s");
  }

  void fail(CallErrorKind kind, const std::string& what) {
    if (conn) conn->close();
    ClientResult r;
    r.ok = false;
    r.error_kind = kind;
    r.error = "call to " + where() + " failed during " + stage + ": " + what;
    deliver(std::move(r));
  }

  void deliver(ClientResult r) {
    if (finished) return;
    finished = true;
    auto cb = std::move(done);
    done = nullptr;
    cb(std::move(r));
  }
};

}  // namespace

ConnectionPool::ConnectionPool(net::io_context& ioc, const Url& origin, const TlsClientConfig& tls, int max_idle,
                               double idle_timeout_s)
    : impl_(std::make_shared<Impl>(ioc, origin, tls, max_idle, idle_timeout_s)) {}

ConnectionPool::~ConnectionPool() {
  std::lock_guard<std::mutex> lk(impl_->mu);
  for (auto& c : impl_->idle) c->close();
  impl_->idle.clear();
}

const Url& ConnectionPool::origin() const { return impl_->origin; }

PoolStats ConnectionPool::stats() const {
  PoolStats s;
  s.connections_opened = impl_->opened.load();
  s.requests = impl_->requests.load();
  s.reused = impl_->reused.load();
  std::lock_guard<std::mutex> lk(impl_->mu);
  s.idle = static_cast<int>(impl_->idle.size());
  return s;
}

ConnectionPool::CallCancel ConnectionPool::async_request(ClientRequest request, double timeout_s,
                                                         std::size_t max_response_bytes, Callback done,
                                                         DataCallback on_data) {
  auto op = std::make_shared<Op>();
  op->on_data = std::move(on_data);
  op->pool = impl_;
  op->timeout_s = timeout_s;
  op->deadline = Clock::now() + seconds(timeout_s);
  op->max_bytes = max_response_bytes;
  op->done = std::move(done);
  const bool post = request.method == "POST";
  op->msg = http::request<http::string_body>{post ? http::verb::post : http::verb::get,
                                             impl_->origin.path + request.target, 11};
  op->msg.set(http::field::host, impl_->host_header);
  op->msg.set(http::field::user_agent, "conductor-gateway");
  if (post || !request.body.empty()) op->msg.set(http::field::content_type, "application/json");
  for (const auto& h : request.headers) op->msg.set(h.first, h.second);
  op->msg.body() = std::move(request.body);
  op->msg.keep_alive(true);
  op->msg.prepare_payload();
  impl_->requests.fetch_add(1, std::memory_order_relaxed);
  op->start();
  std::weak_ptr<Op> weak = op;
  return [weak] {
    if (auto o = weak.lock()) o->cancel();
  };
}

namespace {

ClientResponse blocking(const Url& url, ClientRequest req, double timeout_s, std::size_t max_bytes,
                        const TlsClientConfig& tls) {
  net::io_context ioc;
  ClientResult out;
  {
    ConnectionPool pool(ioc, url, tls, /*max_idle=*/0);
    pool.async_request(std::move(req), timeout_s, max_bytes, [&out](ClientResult r) { out = std::move(r); });
    ioc.run();
  }
  if (!out.ok) throw CallError(out.error_kind, out.error);
  return std::move(out.response);
}

}  // namespace

ClientResponse http_post_json(const Url& url, const std::string& path, const std::string& body, const Headers& headers,
                              double timeout_s, std::size_t max_response_bytes, const TlsClientConfig& tls) {
  ClientRequest r;
  r.method = "POST";
  r.target = path;
  r.body = body;
  r.headers = headers;
  return blocking(url, std::move(r), timeout_s, max_response_bytes, tls);
}

ClientResponse http_get(const Url& url, const std::string& path, double timeout_s, const TlsClientConfig& tls) {
  ClientRequest r;
  r.method = "GET";
  r.target = path;
  return blocking(url, std::move(r), timeout_s, 64 << 20, tls);
}

}  // namespace conductor::serve
