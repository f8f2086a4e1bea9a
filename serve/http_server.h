// A small HTTP/1.1 server on Boost.Beast (asio), shared by `conductor serve` and `conductor
// replay-server`. Beast stays out of this header (pimpl) so users compile fast.
//
// Contract:
//  - start() binds host:port (port 0 = a free port chosen by the OS; port() tells which) and runs
//    `threads` event-loop threads. Each connection is served on its own strand; keep-alive is honoured.
//  - The handler is called on an event-loop thread with a complete request and must call the
//    Responder exactly once, from any thread, now or later (an async handler hands the work to
//    another thread or a timer and responds from there). It must not block for long: a handler that
//    waits on the network moves that work off the event loop.
//  - A handler that throws HttpError gets a JSON error with that status; any other exception a 500
//    JSON error; the server keeps serving either way. A Responder dropped without being called
//    answers 500 (never a hung connection).
//  - Input the handler never sees: a malformed request line or header gets 400; a body larger than
//    body_limit_bytes gets 413; both close the connection. A client that does not complete a request
//    within read_timeout_s (a slow sender) is disconnected, as is one that does not read its
//    response within write_timeout_s. An abrupt disconnect just ends that connection.
//  - drain() stops accepting, lets every request already being handled finish (up to a deadline),
//    closes the connections and stops the threads. It is what SIGTERM does in `conductor serve`.
//  - Error bodies are JSON in the OpenAI style: {"error": {"message": ..., "type": ..., "code": status}}.
//  - Streaming: a response whose `stream` is set is sent with Transfer-Encoding: chunked; every
//    BodyStream::write() becomes one chunk as soon as the connection can take it, end() sends the
//    last chunk (then keep-alive goes on). Used for server-sent events.
//  - Cancellation: every request carries a RequestCancel that fires once when the client goes away
//    before its response is complete: a failed write, or (plain HTTP) the connection closed or reset
//    while the handler works (the server watches the socket; a client that sends a pipelined
//    request is not watched further). The handler stops its upstream work on it; it must still
//    respond (the response is then discarded).
//  - TLS: with tls_cert_file and tls_key_file (PEM) every connection is HTTPS (TLS 1.2 or later);
//    the handshake must complete within read_timeout_s. Used by `replay-server` to stand in for
//    HTTPS providers on loopback; `conductor serve` itself binds loopback and is usually fronted by
//    the deployment's own TLS terminator.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace conductor::serve {

// Fired once when the client disconnects before its response is complete (see the contract above).
class RequestCancel {
 public:
  bool cancelled() const;
  // `fn` runs once on cancellation: at once (on this thread) when already cancelled, else on the
  // server's thread that notices it. A later call replaces an earlier callback.
  void on_cancel(std::function<void()> fn);
  // Server side (idempotent).
  void cancel();

 private:
  mutable std::mutex mu_;
  bool cancelled_ = false;
  std::function<void()> fn_;
};

// A response body produced piece by piece (server-sent events). Thread-safe. The producer must
// call end() (the connection is held open until then, or until the client goes away).
class BodyStream {
 public:
  // Queues one chunk (empty data is ignored); ignored after end() or once the client is gone.
  void write(std::string data);
  // The last chunk: the response is complete once what was written has been sent.
  void end();
  bool ended() const;

  // Server side: `notify` is called (from the producer's thread) whenever there is something new.
  void set_notify(std::function<void()> notify);
  // Everything written since the last take (concatenated) and whether end() was called.
  std::string take(bool* ended);
  void drop();  // the client is gone: forget what is queued, ignore further writes

 private:
  mutable std::mutex mu_;
  std::string pending_;
  bool ended_ = false;
  bool dropped_ = false;
  std::function<void()> notify_;
};

struct HttpRequest {
  std::string method;   // "GET", "POST", ...
  std::string target;   // "/v1/route?x=1"
  std::string path;     // target without the query string
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::shared_ptr<RequestCancel> cancel = std::make_shared<RequestCancel>();
  // First header named `name` (lower case), or "".
  std::string header(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::shared_ptr<BodyStream> stream;  // non-null: the body is streamed (chunked) and `body` is ignored
};

// Thrown by handlers to answer with `status` and a JSON error body.
class HttpError : public Error {
 public:
  HttpError(int status, const std::string& message, std::string type = "invalid_request_error")
      : Error(message), status_(status), type_(std::move(type)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }

 private:
  int status_;
  std::string type_;
};

// {"error": {"message": m, "type": t, "code": status}}
HttpResponse json_error(int status, const std::string& message, const std::string& type);

using Responder = std::function<void(HttpResponse)>;
using Handler = std::function<void(HttpRequest& request, Responder respond)>;
// Called once per response written (also for 400/413 the server generates itself); used for metrics.
using ResponseObserver = std::function<void(const std::string& path, int status, double seconds)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8080;                 // 0 = any free port
  int threads = 2;                 // event-loop threads, >= 1
  std::size_t body_limit_bytes = 1 << 20;  // larger bodies get 413
  double read_timeout_s = 10.0;    // to receive one whole request (headers and body)
  double write_timeout_s = 10.0;   // to send one response
  std::string server_name = "conductor";
  std::string tls_cert_file;       // PEM certificate (chain); with tls_key_file: serve HTTPS
  std::string tls_key_file;        // PEM private key
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Handler handler, ResponseObserver observer = nullptr);
  ~HttpServer();  // drains with a short deadline if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts the threads; throws conductor::Error naming host:port when it cannot bind.
  void start();
  int port() const;
  const HttpServerOptions& options() const;

  // Runs `fn` on an event-loop thread after `seconds` (used for simulated latency).
  void run_after(double seconds, std::function<void()> fn);

  // Stops accepting, waits up to `deadline_s` for in-flight requests, then stops. Idempotent.
  void drain(double deadline_s = 10.0);
  // Blocks until the server has stopped (after drain(), from another thread or a signal).
  void wait();
  bool running() const;
  bool draining() const;
  // Requests currently being handled.
  int in_flight() const;

  struct Impl;  // internal (public so the connection class in the .cpp can name it)

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace conductor::serve
