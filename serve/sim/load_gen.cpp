#include "serve/sim/load_gen.h"

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
#include "serve/http_client.h"

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
  // No body: a GET (e.g. /healthz).
  http::request<http::string_body> req{body.empty() ? http::verb::get : http::verb::post, path, 11};
  req.set(http::field::host, host);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
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

namespace conductor::serve {

TtftResult run_ttft(const Url& url, const std::string& path, const std::vector<std::string>& bodies, double timeout_s) {
  net::io_context ioc(1);
  ConnectionPool pool(ioc, url, {}, /*max_idle=*/1);
  TtftResult out;
  std::vector<double> first_ms, total_ms;
  for (const auto& body : bodies) {
    ++out.requests;
    ClientRequest req;
    req.target = path;
    req.body = body;
    std::string seen;
    double first = -1.0;
    const auto t0 = std::chrono::steady_clock::now();
    ClientResult result;
    pool.async_request(
        req, timeout_s, 16 << 20, [&](ClientResult r) { result = std::move(r); },
        [&](std::string piece) {
          if (first >= 0) return;
          seen += piece;
          // A content delta with at least one character: "content":"x
          const std::string key = R"("content":")";
          for (auto at = seen.find(key); at != std::string::npos; at = seen.find(key, at + 1))
            if (at + key.size() < seen.size() && seen[at + key.size()] != '"') {
              first = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
              break;
            }
        });
    ioc.restart();
    ioc.run();
    const double total = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!result.ok || result.response.status != 200 || first < 0) {
      if (out.errors.size() < 5)
        out.errors.push_back(!result.ok ? result.error
                                        : "status " + std::to_string(result.response.status) + ": " +
                                              result.response.body.substr(0, 200));
      continue;
    }
    ++out.ok;
    first_ms.push_back(first);
    total_ms.push_back(total);
  }
  if (!first_ms.empty()) {
    out.p50_ms = percentile(first_ms, 50);
    out.p99_ms = percentile(first_ms, 99);
    out.max_ms = *std::max_element(first_ms.begin(), first_ms.end());
    out.total_p50_ms = percentile(total_ms, 50);
  }
  return out;
}

BurstResult run_burst(const Url& url, const std::string& path, const std::vector<std::string>& bodies,
                      double timeout_s) {
  net::io_context ioc(1);
  BurstResult out;
  out.requests = static_cast<int>(bodies.size());
  std::vector<double> lat_ms;
  lat_ms.reserve(bodies.size());
  {
    ConnectionPool pool(ioc, url, {}, /*max_idle=*/0);
    const auto t0 = Clock::now();
    Clock::time_point last = t0;
    for (const auto& b : bodies) {
      ClientRequest req;
      req.target = path;
      req.body = b;
      const auto sent = Clock::now();
      pool.async_request(std::move(req), timeout_s, 16 << 20, [&, sent](ClientResult r) {
        const auto now = Clock::now();
        last = std::max(last, now);
        lat_ms.push_back(std::chrono::duration<double, std::milli>(now - sent).count());
        ++out.statuses[r.ok ? r.response.status : 0];
        if (!r.ok && out.errors.size() < 5) out.errors.push_back(r.error);
      });
    }
    ioc.run();
    out.wall_s = std::chrono::duration<double>(last - t0).count();
  }
  std::sort(lat_ms.begin(), lat_ms.end());
  if (!lat_ms.empty()) {
    out.p50_ms = percentile(lat_ms, 50);
    out.p99_ms = percentile(lat_ms, 99);
    out.max_ms = lat_ms.back();
  }
  return out;
}

struct TrafficRunner::Impl {
  Impl(const Url& u, TrafficOptions o) : url(u), options(o), pool(ioc, url, {}, /*max_idle=*/4096), tick(ioc), report(ioc) {}
  net::io_context ioc{1};
  Url url;
  TrafficOptions options;
  ConnectionPool pool;
  net::steady_timer tick, report;
  Clock::time_point t0;
  uint64_t next = 0;
  int outstanding = 0;
  bool sending = true;
  TrafficInterval cur;
  std::vector<double> lat_ms;
};

TrafficRunner::TrafficRunner(const Url& url, TrafficOptions options) : impl_(std::make_unique<Impl>(url, options)) {
  if (!(options.rate_per_s > 0)) fail("load generator: the rate must be > 0 requests per second, got ", options.rate_per_s);
}
TrafficRunner::~TrafficRunner() = default;

void TrafficRunner::send_extra(const std::string& path, const std::string& body) {
  ClientRequest req;
  req.target = path;
  req.body = body;
  Impl* s = impl_.get();
  ++s->outstanding;
  s->pool.async_request(std::move(req), s->options.timeout_s, 1 << 20, [this, s](ClientResult r) {
    --s->outstanding;
    ++extra_statuses_[r.ok ? r.response.status : 0];
  });
}

void TrafficRunner::run(MakeRequest make, OnAnswer on_answer, OnInterval on_interval) {
  Impl& s = *impl_;
  s.t0 = Clock::now();
  const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / s.options.rate_per_s));
  const auto stop_at = s.t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s.options.duration_s));
  auto flush_interval = [&] {
    TrafficInterval iv = s.cur;
    iv.t_end_s = std::chrono::duration<double>(Clock::now() - s.t0).count();
    std::sort(s.lat_ms.begin(), s.lat_ms.end());
    if (!s.lat_ms.empty()) {
      iv.p50_ms = percentile(s.lat_ms, 50);
      iv.p99_ms = percentile(s.lat_ms, 99);
      iv.max_ms = s.lat_ms.back();
    }
    iv.outstanding = s.outstanding;
    s.cur = TrafficInterval{};
    s.lat_ms.clear();
    if (on_interval) on_interval(iv);
  };
  std::function<void(Clock::time_point)> schedule_send = [&](Clock::time_point when) {
    s.tick.expires_at(when);
    s.tick.async_wait([&, when](boost::system::error_code ec) {
      if (ec) return;
      const auto now = Clock::now();
      if (now >= stop_at || (s.options.max_requests > 0 && s.next >= s.options.max_requests)) {
        s.sending = false;
        return;
      }
      const uint64_t i = s.next++;
      auto [path, body] = make(i);
      ClientRequest req;
      req.target = path;
      req.body = std::move(body);
      ++s.outstanding;
      ++s.cur.sent;
      const auto sent = Clock::now();
      s.pool.async_request(std::move(req), s.options.timeout_s, 16 << 20, [&, i, sent](ClientResult r) {
        --s.outstanding;
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
        ++s.cur.answered;
        ++s.cur.statuses[r.ok ? r.response.status : 0];
        s.lat_ms.push_back(ms);
        if (on_answer) on_answer(i, r, ms / 1000.0);
      });
      schedule_send(when + period);  // fixed schedule: no drift, no coordinated omission
    });
  };
  std::function<void()> schedule_report = [&] {
    s.report.expires_after(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s.options.report_every_s)));
    s.report.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      flush_interval();
      if (s.sending || s.outstanding > 0) schedule_report();
    });
  };
  schedule_send(s.t0);
  schedule_report();
  // Stop the report timer once sending is over and every answer is in.
  std::function<void()> watch = [&] {
    auto t = std::make_shared<net::steady_timer>(s.ioc, std::chrono::milliseconds(20));
    t->async_wait([&, t](boost::system::error_code) {
      if (!s.sending && s.outstanding == 0) {
        s.report.cancel();
        return;
      }
      watch();
    });
  };
  watch();
  s.ioc.run();
  if (s.cur.sent > 0 || s.cur.answered > 0) flush_interval();
}

}  // namespace conductor::serve
