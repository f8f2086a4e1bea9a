#include "serve/http_server.h"

#include "core/log.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <iostream>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include "core/json_util.h"

namespace conductor::serve {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

std::string HttpRequest::header(const std::string& name) const {
  for (const auto& kv : headers)
    if (kv.first == name) return kv.second;
  return "";
}

bool RequestCancel::cancelled() const {
  std::lock_guard<std::mutex> lk(mu_);
  return cancelled_;
}

void RequestCancel::on_cancel(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!cancelled_) {
      fn_ = std::move(fn);
      return;
    }
  }
  if (fn) fn();
}

void RequestCancel::cancel() {
  std::function<void()> fn;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (cancelled_) return;
    cancelled_ = true;
    fn = std::move(fn_);
    fn_ = nullptr;
  }
  if (fn) fn();
}

void BodyStream::write(std::string data) {
  if (data.empty()) return;
  std::function<void()> notify;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (ended_ || dropped_) return;
    pending_ += data;
    notify = notify_;
  }
  if (notify) notify();
}

void BodyStream::end() {
  std::function<void()> notify;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (ended_) return;
    ended_ = true;
    notify = notify_;
  }
  if (notify) notify();
}

bool BodyStream::ended() const {
  std::lock_guard<std::mutex> lk(mu_);
  return ended_;
}

void BodyStream::set_notify(std::function<void()> notify) {
  std::lock_guard<std::mutex> lk(mu_);
  notify_ = std::move(notify);
}

std::string BodyStream::take(bool* ended) {
  std::lock_guard<std::mutex> lk(mu_);
  *ended = ended_;
  std::string out;
  out.swap(pending_);
  return out;
}

void BodyStream::drop() {
  std::lock_guard<std::mutex> lk(mu_);
  dropped_ = true;
  pending_.clear();
  notify_ = nullptr;
}

HttpResponse json_error(int status, const std::string& message, const std::string& type) {
  HttpResponse r;
  r.status = status;
  r.body = json{{"error", {{"message", message}, {"type", type}, {"code", status}}}}.dump();
  return r;
}

namespace {
std::chrono::steady_clock::duration seconds_to_duration(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}
}  // namespace

// What drain() needs of a connection, whatever its stream (plain TCP or TLS).
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void close_if_idle() = 0;
};

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  HttpServerOptions options;
  Handler handler;
  ResponseObserver observer;
  // Both owned through pointers so the destructor can destroy them in order: the acceptor and every
  // pending handler (holding its connection's socket) go before the io_context itself.
  std::unique_ptr<net::io_context> ioc_ptr;
  net::io_context& ioc;
  std::unique_ptr<tcp::acceptor> acceptor_ptr;
  tcp::acceptor& acceptor;
  // Responders not yet destroyed: a handler may still hold one (and through it a socket).
  std::atomic<int> live_responders{0};
  std::vector<std::thread> threads;
  std::atomic<int> in_flight{0};
  std::atomic<bool> draining{false};
  std::atomic<bool> started{false};
  std::atomic<bool> stopped{false};
  int bound_port = 0;

  // Live connections, so drain() can close the idle ones. Touched once per connection, not per request.
  std::mutex sessions_mu;
  std::list<std::weak_ptr<SessionBase>> sessions;
  // TLS: the server context (null for plain HTTP).
  std::unique_ptr<ssl::context> tls;
  // Pending run_after() timers, so drain() can fire them early instead of waiting them out.
  std::mutex timers_mu;
  std::list<std::weak_ptr<net::steady_timer>> timers;

  Impl(HttpServerOptions o, Handler h, ResponseObserver obs)
      : options(std::move(o)),
        handler(std::move(h)),
        observer(std::move(obs)),
        ioc_ptr(std::make_unique<net::io_context>(std::max(1, options.threads))),
        ioc(*ioc_ptr),
        acceptor_ptr(std::make_unique<tcp::acceptor>(ioc)),
        acceptor(*acceptor_ptr) {}

  void do_accept();
  void drain(double deadline_s);
  void join() {
    for (auto& t : threads)
      if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
  }
};

// One connection: read a request, hand it to the handler, write the response, repeat (keep-alive).
// Stream is beast::tcp_stream (HTTP) or beast::ssl_stream<beast::tcp_stream> (HTTPS).
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;

  template <class... StreamArgs>
  Session(std::shared_ptr<HttpServer::Impl> server, StreamArgs&&... args)
      : stream_(std::forward<StreamArgs>(args)...), server_(std::move(server)) {}

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->handshake(); });
  }

  // Posted by drain(): closes the connection unless a request is being handled on it.
  void close_if_idle() override {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_) self->close();
    });
  }

  // Called (through the Responder) from any thread.
  void respond(HttpResponse r) {
    net::dispatch(stream_.get_executor(),
                  [self = shared_from_this(), r = std::move(r)]() mutable { self->write(std::move(r), false); });
  }

 private:
  struct ResponderState {
    std::shared_ptr<Session> session;
    std::shared_ptr<HttpServer::Impl> server;
    std::atomic<bool> done{false};
    explicit ResponderState(std::shared_ptr<Session> s) : session(std::move(s)), server(session->server_) {
      server->live_responders.fetch_add(1);
    }
    void respond(HttpResponse r) {
      if (!done.exchange(true) && !server->stopped.load()) session->respond(std::move(r));
    }
    ~ResponderState() {
      if (!done.exchange(true) && !server->stopped.load())
        session->respond(json_error(500, "the handler dropped the request without answering", "server_error"));
      session.reset();  // before the count drops: the server may destroy its io_context right after
      server->live_responders.fetch_sub(1);
    }
  };

  // TLS: the handshake first (within the read timeout); plain HTTP: straight to the request.
  void handshake() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      read_header();
    } else {
      lowest().expires_after(seconds_to_duration(server_->options.read_timeout_s));
      stream_.async_handshake(ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
        if (ec) return self->close();  // not TLS, bad certificate, timeout: nothing to answer
        self->read_header();
      });
    }
  }

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  void read_header() {
    parser_.emplace();
    parser_->body_limit(server_->options.body_limit_bytes);
    parser_->header_limit(16 * 1024);
    lowest().expires_after(seconds_to_duration(server_->options.read_timeout_s));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    const auto& req = parser_->get();
    // A declared body over the limit is refused before reading it.
    if (auto len = parser_->content_length(); len && *len > server_->options.body_limit_bytes)
      return on_read_error(http::error::body_limit);
    if (beast::iequals(req[http::field::expect], "100-continue") && !parser_->is_done()) {
      // curl and others wait for "100 Continue" before sending a body over 1 KB.
      continue_ = std::make_shared<http::response<http::empty_body>>(http::status::continue_, req.version());
      http::async_write(stream_, *continue_, [self = shared_from_this()](beast::error_code ec2, std::size_t) {
        if (ec2) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) return on_request();
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->on_read_error(ec);
      self->on_request();
    });
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == http::error::partial_message || ec.category() != http::make_error_code(http::error::bad_target).category())
      return close();  // closed by the peer, timed out, reset: nothing to answer
    path_ = "(unparsed)";
    t0_ = Clock::now();
    if (ec == http::error::body_limit)
      return write(json_error(413, "request body exceeds the limit of " +
                                       std::to_string(server_->options.body_limit_bytes) + " bytes",
                              "invalid_request_error"),
                   true);
    if (ec == http::error::header_limit)
      return write(json_error(431, "request headers too large", "invalid_request_error"), true);
    write(json_error(400, std::string("malformed HTTP request: ") + ec.message(), "invalid_request_error"), true);
  }

  void on_request() {
    lowest().expires_never();
    t0_ = Clock::now();
    auto msg = parser_->release();
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.path = req.target.substr(0, req.target.find('?'));
    path_ = req.path;
    for (const auto& f : msg) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    req.body = std::move(msg.body());
    cancel_ = req.cancel;

    busy_ = true;
    counted_ = true;
    server_->in_flight.fetch_add(1, std::memory_order_relaxed);
    watch_client(++serial_);
    auto state = std::make_shared<ResponderState>(shared_from_this());
    try {
      server_->handler(req, [state](HttpResponse r) { state->respond(std::move(r)); });
    } catch (const HttpError& e) {
      state->respond(json_error(e.status(), e.what(), e.type()));
    } catch (const std::exception& e) {
      state->respond(json_error(500, std::string("internal error: ") + e.what(), "server_error"));
    }
  }

  // Plain HTTP: while the handler works, a readable socket means the client closed or reset the
  // connection (or sent a pipelined request: then the watch stops).
  void watch_client(uint64_t serial) {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      lowest().socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(), serial](beast::error_code ec) {
        if (ec || serial != self->serial_ || !self->busy_) return;
        char c;
        const ssize_t n = ::recv(self->lowest().socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0) return;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return self->watch_client(serial);
        self->client_gone();
      });
    }
  }

  void client_gone() {
    if (cancel_) cancel_->cancel();
    if (!stream_body_) return;  // the handler's response will find the connection closed
    stream_body_->drop();
    if (chunk_writing_) return close();  // the pending write fails and ends the stream
    stream_body_.reset();
    on_write(net::error::connection_reset, true);
  }

  void write(HttpResponse r, bool close_after) {
    if (r.stream) return write_stream(std::move(r));
    auto res = std::make_shared<http::response<http::string_body>>();
    res->result(static_cast<unsigned>(r.status));
    res->version(version_);
    res->set(http::field::server, server_->options.server_name);
    res->set(http::field::content_type, r.content_type);
    for (auto& h : r.headers) res->set(h.first, h.second);
    res->body() = std::move(r.body);
    res->keep_alive(keep_alive_ && !close_after && !server_->draining.load());
    res->prepare_payload();
    if (server_->observer) {
      try {
        server_->observer(path_, r.status, std::chrono::duration<double>(Clock::now() - t0_).count());
      } catch (...) {  // metrics never take a response down
      }
    }
    lowest().expires_after(seconds_to_duration(server_->options.write_timeout_s));
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      self->on_write(ec, res->need_eof());
    });
  }

  // Status and headers (chunked), then the chunks as the producer writes them, then the last chunk.
  void write_stream(HttpResponse r) {
    auto res = std::make_shared<http::response<http::empty_body>>();
    res->result(static_cast<unsigned>(r.status));
    res->version(version_);
    res->set(http::field::server, server_->options.server_name);
    res->set(http::field::content_type, r.content_type);
    res->set(http::field::cache_control, "no-cache");
    for (auto& h : r.headers) res->set(h.first, h.second);
    res->keep_alive(keep_alive_ && !server_->draining.load());
    res->chunked(true);
    stream_keep_alive_ = res->keep_alive();
    stream_body_ = std::move(r.stream);
    if (server_->observer) {
      try {
        server_->observer(path_, r.status, std::chrono::duration<double>(Clock::now() - t0_).count());
      } catch (...) {
      }
    }
    auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*res);
    lowest().expires_after(seconds_to_duration(server_->options.write_timeout_s));
    chunk_writing_ = true;
    http::async_write_header(stream_, *sr, [self = shared_from_this(), res, sr](beast::error_code ec, std::size_t) {
      self->chunk_writing_ = false;
      if (ec) return self->stream_failed(ec);
      self->lowest().expires_never();
      // The notifier keeps the connection alive while the producer works (a TLS connection has no
      // other pending operation between chunks); it is cleared when the stream ends or fails.
      auto exec = self->stream_.get_executor();
      self->stream_body_->set_notify([self, exec] { net::dispatch(exec, [self] { self->pump(); }); });
      self->pump();
    });
  }

  void pump() {
    if (!stream_body_ || chunk_writing_) return;
    bool ended = false;
    chunk_ = stream_body_->take(&ended);
    if (!chunk_.empty()) {
      chunk_writing_ = true;
      lowest().expires_after(seconds_to_duration(server_->options.write_timeout_s));
      net::async_write(stream_, http::make_chunk(net::buffer(chunk_)),
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         self->chunk_writing_ = false;
                         if (ec) return self->stream_failed(ec);
                         self->lowest().expires_never();
                         self->pump();
                       });
      return;
    }
    if (!ended) return;
    chunk_writing_ = true;
    stream_body_->set_notify(nullptr);
    lowest().expires_after(seconds_to_duration(server_->options.write_timeout_s));
    net::async_write(stream_, http::make_chunk_last(), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->chunk_writing_ = false;
      self->stream_body_.reset();
      self->on_write(ec, !self->stream_keep_alive_);
    });
  }

  void stream_failed(beast::error_code ec) {
    if (cancel_) cancel_->cancel();
    stream_body_->drop();
    stream_body_.reset();
    on_write(ec, true);
  }

  void on_write(beast::error_code ec, bool close_now) {
    busy_ = false;
    ++serial_;
    cancel_.reset();
    {
      beast::error_code ignored;
      lowest().socket().cancel(ignored);  // the client watch
    }
    if (counted_) {
      counted_ = false;
      server_->in_flight.fetch_sub(1, std::memory_order_relaxed);
    }
    if (ec) return close();
    if (close_now || server_->draining.load()) {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      return close();
    }
    read_header();
  }

  void close() {
    beast::error_code ignored;
    lowest().socket().close(ignored);
  }

  Stream stream_;
  std::shared_ptr<HttpServer::Impl> server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<http::response<http::empty_body>> continue_;
  bool keep_alive_ = false;
  bool busy_ = false;
  bool counted_ = false;
  unsigned version_ = 11;
  std::string path_;
  Clock::time_point t0_;
  // The request being handled: its cancel signal and (streaming) its body.
  std::shared_ptr<RequestCancel> cancel_;
  uint64_t serial_ = 0;
  std::shared_ptr<BodyStream> stream_body_;
  std::string chunk_;
  bool chunk_writing_ = false;
  bool stream_keep_alive_ = false;
};

void HttpServer::Impl::do_accept() {
  acceptor.async_accept(net::make_strand(ioc), [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !self->acceptor.is_open()) return;
    if (!ec && !self->draining.load()) {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto track = [&](const std::shared_ptr<SessionBase>& session) {
        std::lock_guard<std::mutex> lk(self->sessions_mu);
        // Forget connections that have ended (amortized: the list never grows past the live ones by much).
        for (auto it = self->sessions.begin(); it != self->sessions.end();)
          it = it->expired() ? self->sessions.erase(it) : std::next(it);
        self->sessions.push_back(session);
      };
      if (self->tls) {
        auto session = std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(self, std::move(socket), *self->tls);
        track(session);
        session->start();
      } else {
        auto session = std::make_shared<Session<beast::tcp_stream>>(self, std::move(socket));
        track(session);
        session->start();
      }
    } else if (ec) {
      // e.g. too many open files: keep the server up and try again shortly.
      auto timer = std::make_shared<net::steady_timer>(self->ioc, std::chrono::milliseconds(50));
      timer->async_wait([self, timer](beast::error_code) {
        if (!self->draining.load()) self->do_accept();
      });
      return;
    }
    self->do_accept();
  });
}

void HttpServer::Impl::drain(double deadline_s) {
  if (!started.load() || draining.exchange(true)) return;
  net::post(ioc, [self = shared_from_this()] {
    beast::error_code ignored;
    self->acceptor.close(ignored);
  });
  const auto deadline = Clock::now() + seconds_to_duration(deadline_s);
  while (in_flight.load() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  // Requests still waiting on a timer (simulated latency) are answered now rather than later.
  {
    std::lock_guard<std::mutex> lk(timers_mu);
    for (auto& w : timers)
      if (auto t = w.lock()) net::post(ioc, [t] { t->cancel(); });
  }
  {
    std::lock_guard<std::mutex> lk(sessions_mu);
    for (auto& w : sessions)
      if (auto s = w.lock()) s->close_if_idle();
  }
  // Let the last responses and closes run, then stop the loops (a handler still holding a
  // responder on another thread is waited for by the destructor).
  const auto settle = Clock::now() + std::chrono::milliseconds(500);
  for (;;) {
    bool any = live_responders.load() > 0;
    if (!any) {
      std::lock_guard<std::mutex> lk(sessions_mu);
      for (auto& w : sessions) any = any || !w.expired();
    }
    if (!any || Clock::now() >= settle) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (in_flight.load() > 0)
    log_warn("serve: stopping with ", in_flight.load(), " request(s) unanswered after the drain deadline");
  ioc.stop();
  stopped.store(true);
}

HttpServer::HttpServer(HttpServerOptions options, Handler handler, ResponseObserver observer)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(handler), std::move(observer))) {
  if (impl_->options.threads < 1) fail("serve: --threads must be >= 1, got ", impl_->options.threads);
  if (impl_->options.port < 0 || impl_->options.port > 65535)
    fail("serve: port must be in [0, 65535], got ", impl_->options.port);
  const auto& o = impl_->options;
  if (o.tls_cert_file.empty() != o.tls_key_file.empty())
    fail("serve: TLS needs both a certificate and a private key (got only the ",
         o.tls_cert_file.empty() ? "key" : "certificate", ")");
  if (!o.tls_cert_file.empty()) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    beast::error_code ec;
    ctx->use_certificate_chain_file(o.tls_cert_file, ec);
    if (ec) fail("serve: cannot load the TLS certificate '", o.tls_cert_file, "': ", ec.message());
    ctx->use_private_key_file(o.tls_key_file, ssl::context::pem, ec);
    if (ec) fail("serve: cannot load the TLS private key '", o.tls_key_file, "': ", ec.message());
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
      fail("serve: the TLS private key '", o.tls_key_file, "' does not match the certificate '", o.tls_cert_file, "'");
    impl_->tls = std::move(ctx);
  }
}

HttpServer::~HttpServer() {
  drain(2.0);
  // A handler still holding a Responder holds a socket of this io_context: wait for it (handlers
  // answer in bounded time: the gateway's calls all have timeouts).
  // After 60 s the remaining responders can only be inside the stopped event loop's own queue (they
  // are destroyed with it and, the server being stopped, post nothing).
  for (int waited_ms = 0; impl_->live_responders.load() > 0 && waited_ms < 60000; waited_ms += 2) {
    if (waited_ms % 5000 == 4998)
      log_info("serve: waiting for ", impl_->live_responders.load(), " handler(s) to finish");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  impl_->ioc.stop();
  impl_->join();
  impl_->threads.clear();
  // Destroy the pending handlers (and the connections they own) now, breaking the
  // session -> server reference cycle; then the io_context.
  impl_->acceptor_ptr.reset();
  impl_->ioc_ptr.reset();
}

void HttpServer::start() {
  CONDUCTOR_CHECK(!impl_->started.load(), "HttpServer::start called twice");
  const auto& o = impl_->options;
  beast::error_code ec;
  const auto address = net::ip::make_address(o.host, ec);
  if (ec) fail("serve: invalid host address '", o.host, "': ", ec.message());
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(o.port));
  auto& acc = impl_->acceptor;
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
  if (ec) fail("serve: cannot listen on ", o.host, ":", o.port, ": ", ec.message());
  impl_->bound_port = acc.local_endpoint().port();
  impl_->started.store(true);
  impl_->do_accept();
  for (int i = 0; i < o.threads; ++i)
    impl_->threads.emplace_back([impl = impl_] {
      for (;;) {
        try {
          impl->ioc.run();
          return;
        } catch (const std::exception& e) {  // a bug in a completion handler: log, keep serving
          log_error("serve: event loop error: ", e.what());
        }
      }
    });
}

int HttpServer::port() const { return impl_->bound_port; }
const HttpServerOptions& HttpServer::options() const { return impl_->options; }

void HttpServer::run_after(double seconds, std::function<void()> fn) {
  auto timer = std::make_shared<net::steady_timer>(impl_->ioc, seconds_to_duration(std::max(0.0, seconds)));
  {
    std::lock_guard<std::mutex> lk(impl_->timers_mu);
    auto& ts = impl_->timers;
    for (auto it = ts.begin(); it != ts.end();) it = it->expired() ? ts.erase(it) : std::next(it);
    ts.push_back(timer);
  }
  // Cancelled (by drain) or expired: either way the work runs, so every request gets its answer.
  timer->async_wait([timer, fn = std::move(fn)](beast::error_code) { fn(); });
}

void HttpServer::drain(double deadline_s) { impl_->drain(deadline_s); }

void HttpServer::wait() {
  impl_->join();
}

bool HttpServer::running() const { return impl_->started.load() && !impl_->stopped.load(); }
bool HttpServer::draining() const { return impl_->draining.load(); }
int HttpServer::in_flight() const { return impl_->in_flight.load(); }

}  // namespace conductor::serve
