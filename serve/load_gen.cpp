#include "serve/load_gen.h"

#include "core/stats.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <chrono>
#include <memory>
#include <vector>

#include "core/error.h"

namespace conductor::serve {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Conn : std::enable_shared_from_this<Conn> {
  Conn(net::io_context& ioc, const http::request<http::string_body>& req) : stream(ioc), req(req) {}
  beast::tcp_stream stream;
  const http::request<http::string_body>& req;
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> parser;
  Clock::time_point sent;
  Clock::time_point measure_from, stop_at;
  std::vector<double> latencies_ms;
  uint64_t non_200 = 0;
  std::string error;

  void send() {
    if (Clock::now() >= stop_at) return;
    sent = Clock::now();
    http::async_write(stream, req, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->fail(ec);
      self->parser.emplace();
      self->parser->body_limit(16 << 20);
      http::async_read(self->stream, self->buffer, *self->parser, [self](beast::error_code ec2, std::size_t) {
        if (ec2) return self->fail(ec2);
        const auto now = Clock::now();
        if (self->sent >= self->measure_from) {
          self->latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - self->sent).count());
          if (self->parser->get().result_int() != 200) ++self->non_200;
        }
        self->send();
      });
    });
  }
  void fail(beast::error_code ec) { error = ec.message(); }
};


}  // namespace

LoadResult run_load(const std::string& host, int port, const std::string& path, const std::string& body,
                    int connections, double duration_s, double warmup_s) {
  if (connections < 1) fail("bench serve: connections must be >= 1, got ", connections);
  net::io_context ioc(1);
  http::request<http::string_body> req{http::verb::post, path, 11};
  req.set(http::field::host, host);
  req.set(http::field::content_type, "application/json");
  req.keep_alive(true);
  req.body() = body;
  req.prepare_payload();
  const tcp::endpoint ep(net::ip::make_address(host), static_cast<unsigned short>(port));
  std::vector<std::shared_ptr<Conn>> conns;
  const auto start = Clock::now();
  const auto measure_from = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup_s));
  const auto stop_at = measure_from + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration_s));
  for (int i = 0; i < connections; ++i) {
    auto c = std::make_shared<Conn>(ioc, req);
    beast::error_code ec;
    c->stream.socket().connect(ep, ec);
    if (ec) fail("bench serve: cannot connect to ", host, ":", port, ": ", ec.message());
    c->stream.socket().set_option(tcp::no_delay(true), ec);
    c->measure_from = measure_from;
    c->stop_at = stop_at;
    c->latencies_ms.reserve(1 << 16);
    conns.push_back(c);
  }
  for (auto& c : conns) c->send();
  ioc.run();
  LoadResult r;
  r.connections = connections;
  r.seconds = duration_s;
  std::vector<double> all;
  for (auto& c : conns) {
    if (!c->error.empty()) fail("bench serve: a connection failed: ", c->error);
    all.insert(all.end(), c->latencies_ms.begin(), c->latencies_ms.end());
    r.non_200 += c->non_200;
  }
  std::sort(all.begin(), all.end());
  r.requests = all.size();
  r.requests_per_s = r.requests / duration_s;
  if (!all.empty()) {
    r.p50_ms = percentile(all, 50);
    r.p90_ms = percentile(all, 90);
    r.p99_ms = percentile(all, 99);
  }
  r.max_ms = all.empty() ? 0.0 : all.back();
  return r;
}

}  // namespace conductor::serve
