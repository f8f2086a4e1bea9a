#include "serve/gateway.h"

#include <boost/asio.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "core/log.h"
#include "serve/sse.h"
#include "traces/tokens.h"
#include "traces/trace_set.h"

namespace conductor::serve {

namespace net = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxResponseBytes = 16 << 20;

std::string fmt_g(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "a number";
}

[[noreturn]] void bad(const std::string& msg) { throw HttpError(400, msg); }

// Normalized answer text for agreement between workers that give no answer class.
std::string normalize_answer(const std::string& s) {
  std::string out;
  bool space = false;
  for (unsigned char c : s) {
    if (std::isspace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(static_cast<char>(std::tolower(c)));
  }
  return out;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The replay providers report the latency they simulate on errors too (serve/sim/replay_server.h).
double simulated_latency_of(const std::string& body) {
  try {
    const json j = json::parse(body);
    if (j.is_object() && j.contains("conductor_latency_s") && j["conductor_latency_s"].is_number()) {
      const double v = j["conductor_latency_s"].get<double>();
      if (std::isfinite(v) && v >= 0) return v;
    }
  } catch (const json::exception&) {
  }
  return -1.0;
}

uint8_t error_code_of(UpstreamError e) {
  switch (e) {
    case UpstreamError::kTimeout: return kTimeout;
    case UpstreamError::kRateLimited: return kRateLimited;
    default: return kServerError;
  }
}

// One provider: adapter, connection pool, concurrency limit with its wait queue, circuit breaker.
struct Upstream {
  explicit Upstream(const CircuitBreakerConfig& breaker_config) : breaker(breaker_config) {}
  int worker = -1;
  std::string worker_name;
  ProviderConfig cfg;
  Url url;
  std::string api_key;
  std::unique_ptr<ProviderAdapter> adapter;
  double timeout_s = 30.0;
  int max_concurrency = 256;
  std::unique_ptr<ConnectionPool> pool;
  CircuitBreaker breaker;

  struct Pending {
    ClientRequest request;
    Clock::time_point deadline;
    double timeout_s = 0;
    ConnectionPool::Callback done;
    ConnectionPool::DataCallback on_data;
    std::optional<net::steady_timer> timer;
    bool taken = false;          // left the queue (sent, timed out or cancelled)
    bool sent = false;
    bool cancel_requested = false;
    ConnectionPool::CallCancel op_cancel;  // once sent
  };
  std::mutex mu;
  int in_flight = 0;
  std::deque<std::shared_ptr<Pending>> queue;
  std::atomic<uint64_t> queued_total{0};

  // Sends now if a slot is free, else waits in the queue (within the call's timeout). With
  // `on_data` a 200 body is streamed (serve/http_client.h). The returned function cancels the call
  // wherever it is (queued or sent); `done` is called exactly once either way.
  ConnectionPool::CallCancel call(net::io_context& ioc, ClientRequest request, double timeout,
                                  ConnectionPool::Callback done, ConnectionPool::DataCallback on_data = nullptr) {
    auto p = std::make_shared<Pending>();
    p->request = std::move(request);
    p->timeout_s = timeout;
    p->deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout));
    p->done = std::move(done);
    p->on_data = std::move(on_data);
    std::weak_ptr<Pending> weak = p;
    ConnectionPool::CallCancel canceller = [this, weak] {
      if (auto q = weak.lock()) cancel(q);
    };
    std::unique_lock<std::mutex> lk(mu);
    if (in_flight < max_concurrency) {
      ++in_flight;
      p->taken = true;
      lk.unlock();
      send(p, timeout);
      return canceller;
    }
    p->timer.emplace(ioc, p->deadline);
    queue.push_back(p);
    queued_total.fetch_add(1, std::memory_order_relaxed);
    lk.unlock();
    p->timer->async_wait([this, p](boost::system::error_code ec) {
      if (ec) return;  // cancelled: a slot was found
      {
        std::lock_guard<std::mutex> g(mu);
        if (p->taken) return;
        p->taken = true;
        queue.erase(std::remove(queue.begin(), queue.end(), p), queue.end());
      }
      char buf[160];
      std::snprintf(buf, sizeof buf, "no free connection slot (max_concurrency %d) within %g s", max_concurrency,
                    p->timeout_s);
      complete_unsent(p, CallErrorKind::kTimeout, "call to " + url.origin() + " queued: " + buf);
    });
    return canceller;
  }

  void complete_unsent(const std::shared_ptr<Pending>& p, CallErrorKind kind, std::string what) {
    ClientResult r;
    r.error_kind = kind;
    r.error = std::move(what);
    auto cb = std::move(p->done);
    cb(std::move(r));
  }

  void cancel(const std::shared_ptr<Pending>& p) {
    std::unique_lock<std::mutex> lk(mu);
    p->cancel_requested = true;
    if (!p->sent) {
      if (p->taken) return;  // timed out in the queue, or being sent: send() sees the request
      p->taken = true;
      queue.erase(std::remove(queue.begin(), queue.end(), p), queue.end());
      lk.unlock();
      p->timer->cancel();
      return complete_unsent(p, CallErrorKind::kCancelled, "call to " + url.origin() + " cancelled while queued");
    }
    auto c = p->op_cancel;
    lk.unlock();
    if (c) c();
  }

  void send(const std::shared_ptr<Pending>& p, double timeout) {
    auto c = pool->async_request(
        std::move(p->request), timeout, kMaxResponseBytes,
        [this, p](ClientResult r) {
          release();
          auto cb = std::move(p->done);
          cb(std::move(r));
        },
        p->on_data);
    bool cancel_now = false;
    {
      std::lock_guard<std::mutex> lk(mu);
      p->sent = true;
      p->op_cancel = c;
      cancel_now = p->cancel_requested;
    }
    if (cancel_now) c();
  }

  void release() {
    std::shared_ptr<Pending> next;
    {
      std::lock_guard<std::mutex> lk(mu);
      --in_flight;
      while (!queue.empty()) {
        auto p = queue.front();
        queue.pop_front();
        if (p->taken) continue;
        p->taken = true;
        ++in_flight;
        next = p;
        break;
      }
    }
    if (!next) return;
    next->timer->cancel();
    const double left = std::chrono::duration<double>(next->deadline - Clock::now()).count();
    send(next, std::max(0.001, left));
  }

  std::pair<int, int> load() {
    std::lock_guard<std::mutex> lk(mu);
    return {in_flight, static_cast<int>(queue.size())};
  }
};

}  // namespace

ProviderConfig ProviderConfig::parse(ConfigReader r) {
  ProviderConfig p;
  p.worker = r.required<std::string>("worker");
  p.base_url = r.required<std::string>("base_url");
  try {
    parse_url(p.base_url);
  } catch (const Error& e) {
    r.fail_at("base_url", e.what());
  }
  const std::string api = r.get_choice("api", "openai", {"openai", "anthropic", "gemini"});
  p.api = parse_api(api);
  p.model = r.get<std::string>("model", p.worker);
  p.api_key_env = r.get<std::string>("api_key_env", "");
  p.ca_file = r.get<std::string>("ca_file", "");
  p.timeout_s = r.get_in<double>("timeout_s", 0.0, 0.0, 3600.0);
  p.max_concurrency = r.get_in<int>("max_concurrency", 0, 0, 1 << 20);
  p.max_tokens = r.get_in<int>("max_tokens", p.max_tokens, 1, 1 << 24);
  p.anthropic_version = r.get<std::string>("anthropic_version", p.anthropic_version);
  p.price_factor = r.get_in<double>("price_factor", 1.0, 0.0, 1e6);
  r.finish();
  return p;
}

GatewayConfig GatewayConfig::parse(ConfigReader r) {
  GatewayConfig c;
  c.threads = r.get_in<int>("threads", c.threads, 1, 256);
  c.call_timeout_s = r.get_in<double>("call_timeout_s", c.call_timeout_s, 0.001, 3600.0);
  c.retries = r.get_in<int>("retries", c.retries, 0, 10);
  c.backoff_initial_s = r.get_in<double>("backoff_initial_s", c.backoff_initial_s, 0.0, 60.0);
  c.backoff_multiplier = r.get_in<double>("backoff_multiplier", c.backoff_multiplier, 1.0, 10.0);
  c.max_retry_after_s = r.get_in<double>("max_retry_after_s", c.max_retry_after_s, 0.0, 3600.0);
  c.max_concurrency = r.get_in<int>("max_concurrency", c.max_concurrency, 1, 1 << 20);
  c.max_idle_connections = r.get_in<int>("max_idle_connections", c.max_idle_connections, 0, 1 << 16);
  c.keepalive_idle_s = r.get_in<double>("keepalive_idle_s", c.keepalive_idle_s, 0.0, 3600.0);
  c.fallback = r.get<bool>("fallback", c.fallback);
  c.model_id = r.get<std::string>("model_id", c.model_id);
  if (c.model_id.empty()) r.fail_at("model_id", "the conductor's model id must not be empty");
  if (r.has("direct_workers")) c.direct_workers = r.get<std::vector<std::string>>("direct_workers", {});
  if (r.has("circuit_breaker")) c.circuit_breaker = CircuitBreakerConfig::parse(r.child("circuit_breaker"));
  for (auto& p : r.child_list("providers")) c.providers.push_back(ProviderConfig::parse(p));
  if (c.providers.empty()) r.fail_at("providers", "the gateway needs at least one provider");
  r.finish();
  return c;
}

struct Gateway::Impl : std::enable_shared_from_this<Gateway::Impl> {
  std::shared_ptr<const Router> router;
  GatewayConfig config;
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<Upstream>> upstreams;
  std::vector<int> upstream_of_worker;  // worker index -> upstream index or -1
  std::shared_ptr<ServerMetrics> metrics;
  std::shared_ptr<DecisionRecorder> recorder;
  std::atomic<int> in_flight{0};
  std::atomic<uint64_t> completion_id{1};
  int64_t created = 0;                          // start-up time (the models' `created`)
  std::vector<std::string> configured_workers;  // workers with a provider, in the export's order

  explicit Impl(int n_threads) : ioc(n_threads) {}
  int direct_worker_of(const json& chat_request, const ClientIdentity& who) const;
};

namespace {

// How a request came in and how it is answered: the OpenAI door (/v1/chat/completions) or the
// Anthropic door (/v1/messages), streamed or not.
struct Door {
  ApiKind api = ApiKind::kOpenAI;
  bool stream = false;
  bool include_usage = false;  // openai stream_options.include_usage
};

// One chat request: the conductor's episode as a chain of callbacks on the request's strand (no
// thread waits on it).
class ChatRequest : public std::enable_shared_from_this<ChatRequest> {
 public:
  ChatRequest(std::shared_ptr<Gateway::Impl> gw, json request, Responder respond, Door door, ClientIdentity who,
              int direct_worker, std::shared_ptr<RequestCancel> cancel)
      : gw_(std::move(gw)),
        strand_(net::make_strand(gw_->ioc)),
        request_(std::move(request)),
        respond_(std::move(respond)),
        door_(door),
        who_(std::move(who)),
        direct_worker_(direct_worker),
        client_cancel_(std::move(cancel)),
        rng_(0) {}

  ~ChatRequest() { gw_->in_flight.fetch_sub(1); }

  void start() {
    if (client_cancel_) {
      std::weak_ptr<ChatRequest> weak = shared_from_this();
      client_cancel_->on_cancel([weak] {
        if (auto self = weak.lock()) net::dispatch(self->strand_, [self] { self->on_client_gone(); });
      });
    }
    net::dispatch(strand_, [self = shared_from_this()] {
      try {
        self->begin();
      } catch (const HttpError& e) {
        self->respond_(client_error(self->door_.api, e.status(), e.what(), e.type()));
      } catch (const std::exception& e) {
        self->respond_(client_error(self->door_.api, 500, std::string("gateway error: ") + e.what(), "server_error"));
      }
    });
  }

 private:
  const LiveWorld& world() const { return gw_->router->world(); }

  void begin() {
    const Router& router = *gw_->router;
    const int n_workers = static_cast<int>(world().workers().size());
    std::string text;
    for (const auto& m : request_["messages"])
      if (m["role"] == "user") text = m["content"].get<std::string>();
    std::string given_query_id;
    if (request_.contains("conductor")) {
      json probe = request_["conductor"];
      probe["query"] = text;
      q_ = router.parse_route_request(probe.dump());
      if (probe.contains(Router::kQueryIdField)) given_query_id = probe[Router::kQueryIdField].get<std::string>();
    } else {
      q_.text = text;
      q_.available.assign(n_workers, 1);
    }
    if (q_.input_tokens < 0) q_.input_tokens = estimate_tokens(text);
    // Provider price factors from serve.yaml, unless the request names the worker's own.
    std::vector<uint8_t> request_priced(static_cast<std::size_t>(n_workers), 0);
    if (request_.contains("conductor") && request_["conductor"].contains("price_factors") &&
        request_["conductor"]["price_factors"].is_object())
      for (int w = 0; w < n_workers; ++w)
        request_priced[w] = request_["conductor"]["price_factors"].contains(world().workers()[w]);
    for (int w = 0; w < n_workers; ++w) {
      const int u = gw_->upstream_of_worker[w];
      if (u < 0 || request_priced[w] || gw_->upstreams[u]->cfg.price_factor == 1.0) continue;
      if (q_.price_factor.size() != static_cast<std::size_t>(n_workers)) q_.price_factor.assign(n_workers, 1.0);
      q_.price_factor[w] = gw_->upstreams[u]->cfg.price_factor;
    }
    // The client's key may use only some workers: naming another is refused, the rest are masked.
    if (!who_.workers.empty() && request_.contains("conductor") && request_["conductor"].contains("available"))
      for (const auto& name : request_["conductor"]["available"])
        if (std::find(who_.workers.begin(), who_.workers.end(), name.get<std::string>()) == who_.workers.end())
          throw HttpError(403, "the API key '" + who_.key_id + "' may not use the worker '" + name.get<std::string>() + "'",
                          "permission_error");
    if (!who_.workers.empty())
      for (int w = 0; w < n_workers; ++w)
        if (std::find(who_.workers.begin(), who_.workers.end(), world().workers()[w]) == who_.workers.end())
          q_.available[w] = 0;
    const auto now = Clock::now();
    int callable = 0;
    for (int w = 0; w < n_workers; ++w) {
      const int u = gw_->upstream_of_worker[w];
      // No endpoint configured, or its circuit is open: the policy sees the worker as unavailable.
      if (u < 0 || !gw_->upstreams[u]->breaker.available(now)) q_.available[w] = 0;
      callable += q_.available[w];
    }
    if (direct_worker_ >= 0 && !q_.available[direct_worker_])
      throw HttpError(503, "worker '" + world().workers()[direct_worker_] + "' is not available now (circuit open)",
                      "service_unavailable");
    if (callable == 0)
      throw HttpError(503, "no configured provider is available for this request (unconfigured, excluded or circuit open)",
                      "service_unavailable");
    uint64_t seq = 0;
    if (gw_->recorder) {
      request_id_ = gw_->recorder->new_request_id(&seq);
      rng_ = gw_->recorder->request_rng(seq);
      logged_.query_id = gw_->recorder->query_id(given_query_id, text);
    } else {
      char buf[32];
      std::snprintf(buf, sizeof buf, "req_%llu", static_cast<unsigned long long>(gw_->completion_id.load()));
      request_id_ = buf;
    }
    completion_id_ = gw_->completion_id.fetch_add(1);
    logged_.request_id = request_id_;
    logged_.endpoint = door_.api == ApiKind::kAnthropic ? "messages" : "chat";
    logged_.key_id = who_.key_id;
    logged_.timestamp_ms = unix_time_ms();
    logged_.query = q_;
    episode_ = world().start(q_);
    tried_.assign(n_workers, 0);
    finish_rule_ = world().default_finish_rule();
    if (direct_worker_ >= 0) {
      // A worker named as the model: one call, no policy decision (not logged as one).
      LoggedStep step;
      step.action = call_action(direct_worker_);
      logged_.steps.push_back(step);
      return start_call(direct_worker_, /*fallback=*/false, /*last=*/true);
    }
    next_step();
  }

  int call_action(int w) const {
    for (std::size_t a = 0; a < world().actions().size(); ++a)
      if (world().actions()[a].kind == ActionInfo::Kind::kCall && world().actions()[a].worker == w)
        return static_cast<int>(a);
    return -1;
  }

  void next_step() {
    if (cancelled_) return finish();
    if (episode_->steps() >= world().max_steps()) return after_policy();
    Decision d;
    try {
      d = gw_->recorder ? gw_->router->decide(*episode_, gw_->recorder->exploration(), rng_)
                        : gw_->router->decide(*episode_);
    } catch (const HttpError&) {
      return after_policy();  // nothing left to do (every callable worker tried)
    }
    last_probs_ = d.probs;
    LoggedStep step;
    step.action = d.action;
    step.propensity = d.propensity;
    logged_.steps.push_back(step);
    const ActionInfo& a = world().actions()[d.action];
    if (a.kind == ActionInfo::Kind::kFinish) {
      finish_rule_ = a.finish_rule;
      finished_by_policy_ = true;
      return after_policy();
    }
    start_call(a.worker, /*fallback=*/false, certainly_last(a.worker, d));
  }

  // Whether the answer of a call to `w` (if it succeeds) is certainly the one returned: the step
  // budget is then used or the mask leaves no other call, and either nothing has answered yet (any
  // finish rule picks the only answer) or the workflow ends at max_steps with the rule `last`.
  bool certainly_last(int w, const Decision& d) const {
    const bool budget_used = episode_->steps() + 1 >= world().max_steps();
    bool other_call = false;
    const auto& actions = world().actions();
    for (std::size_t a = 0; a < actions.size() && a < d.mask.size(); ++a)
      if (d.mask[a] && actions[a].kind == ActionInfo::Kind::kCall && actions[a].worker != w) other_call = true;
    if (!answered()) return budget_used || !other_call;
    return budget_used && world().default_finish_rule() == "last";
  }

  void start_call(int w, bool fallback, bool last) {
    current_worker_ = w;
    current_fallback_ = fallback;
    // Fallback calls come only while nothing has answered: a success is the answer.
    relay_ = door_.stream && (last || fallback);
    attempt_ = 0;
    backoff_ = gw_->config.backoff_initial_s;
    call_t0_ = Clock::now();
    earlier_attempts_s_ = 0.0;
    attempt();
  }

  Upstream& upstream() { return *gw_->upstreams[gw_->upstream_of_worker[current_worker_]]; }

  void attempt() {
    retry_timer_.reset();
    if (cancelled_) return call_failed_cancelled();
    Upstream& up = upstream();
    attempt_t0_ = Clock::now();
    if (!up.breaker.try_acquire(attempt_t0_, &probe_))
      return call_failed(UpstreamError::kCircuitOpen, "circuit_open", -1.0, /*retryable=*/false);
    if (gw_->metrics) gw_->metrics->count_worker_call(current_worker_);
    ClientRequest req;
    try {
      req = relay_ ? up.adapter->build_stream(request_, up.cfg.model, up.api_key)
                   : up.adapter->build(request_, up.cfg.model, up.api_key);
    } catch (const Error& e) {
      if (probe_) up.breaker.release_probe();
      return call_failed(UpstreamError::kBadRequest, "bad_request", -1.0, false);
    }
    auto self = shared_from_this();
    ConnectionPool::DataCallback on_data;
    reader_.reset();
    stream_failure_.reset();
    if (relay_) {
      reader_ = up.adapter->stream_reader();
      on_data = [self](std::string piece) {
        net::dispatch(self->strand_, [self, piece = std::move(piece)] { self->on_piece(piece); });
      };
    }
    call_cancel_ = up.call(
        gw_->ioc, std::move(req), up.timeout_s,
        [self](ClientResult r) {
          net::dispatch(self->strand_, [self, r = std::move(r)]() mutable { self->on_response(std::move(r)); });
        },
        std::move(on_data));
  }

  // A piece of a streamed answer: its text goes to the client at once.
  void on_piece(const std::string& piece) {
    if (cancelled_ || stream_failure_ || !reader_) return;
    std::vector<std::string> texts;
    try {
      reader_->feed(piece, &texts);
    } catch (const StreamFailure& e) {
      stream_failure_ = e.error();
    } catch (const RequestRefused& e) {
      stream_failure_ = ClassifiedError{UpstreamError::kBadRequest, false, -1.0, e.what()};
    } catch (const Error& e) {
      stream_failure_ = ClassifiedError{UpstreamError::kBadResponse, true, -1.0, e.what()};
    }
    for (const auto& t : texts) relay_text(t);
    if (stream_failure_ && call_cancel_) call_cancel_();
  }

  void relay_text(const std::string& t) {
    if (!out_) {
      // The first token: status and headers go out now (the route so far, ending with this call).
      out_ = std::make_shared<BodyStream>();
      enc_ = make_sse_encoder(door_.api, answer_id(), world().workers()[current_worker_], door_.include_usage);
      std::string route;
      double cost = 0;
      for (std::size_t i = 0; i < results_.size(); ++i) {
        route += route_[i] + ",";
        cost += results_[i].cost_usd;
      }
      route += world().workers()[current_worker_];
      HttpResponse head;
      head.content_type = "text/event-stream";
      head.stream = out_;
      head.headers = {{"x-conductor-route", route},
                      {"x-conductor-cost-usd", fmt_g(cost)},
                      {"x-conductor-model-version", gw_->router->model_version()},
                      {"x-conductor-steps", std::to_string(results_.size() + 1)},
                      {"x-conductor-request-id", request_id_},
                      {"x-conductor-stream", "relayed"}};
      out_->write(enc_->begin());
      respond_(std::move(head));
    }
    out_->write(enc_->delta(t));
  }

  void on_client_gone() {
    if (cancelled_ || done_) return;
    cancelled_ = true;
    if (call_cancel_) call_cancel_();
    if (retry_timer_) retry_timer_->cancel();
  }

  void on_response(ClientResult r) {
    call_cancel_ = nullptr;
    if (cancelled_) return call_failed_cancelled();
    Upstream& up = upstream();
    if (stream_failure_) {
      const ClassifiedError e = *stream_failure_;
      log_warn("gateway: ", world().workers()[current_worker_], ": the streamed answer failed: ", e.message);
      return call_failed(e.kind, "stream_" + std::string(upstream_error_name(e.kind)), e.retry_after_s, e.retryable);
    }
    if (!r.ok) {
      UpstreamError kind = r.error_kind == CallErrorKind::kTimeout   ? UpstreamError::kTimeout
                           : r.error_kind == CallErrorKind::kConnect ? UpstreamError::kConnect
                           : r.error_kind == CallErrorKind::kTls     ? UpstreamError::kTls
                                                                     : UpstreamError::kBadResponse;
      if (kind == UpstreamError::kTls || kind == UpstreamError::kBadResponse) log_warn("gateway: ", r.error);
      return call_failed(kind, upstream_error_name(kind), -1.0, upstream_error_retryable(kind));
    }
    if (r.response.status != 200) {
      const ClassifiedError e = up.adapter->classify(r.response);
      attempt_simulated_s_ = simulated_latency_of(r.response.body);
      return call_failed(e.kind, "http_" + std::to_string(r.response.status), e.retry_after_s, e.retryable);
    }
    ProviderAnswer a;
    try {
      a = reader_ ? reader_->finish() : up.adapter->parse(r.response.body);
    } catch (const RequestRefused&) {
      return call_failed(UpstreamError::kBadRequest, "refused", -1.0, false);
    } catch (const StreamFailure& e) {
      return call_failed(e.error().kind, "stream_" + std::string(upstream_error_name(e.error().kind)),
                         e.error().retry_after_s, e.error().retryable);
    } catch (const Error&) {
      return call_failed(UpstreamError::kBadResponse, "bad_response", -1.0, true);
    }
    up.breaker.on_success(probe_);
    const LiveWorld& w = world();
    CallResult c;
    c.worker = current_worker_;
    c.error = kOk;
    c.answer_text = std::move(a.text);
    const int prompt_tokens = a.prompt_tokens >= 0 ? a.prompt_tokens : q_.input_tokens;
    const int completion_tokens = a.completion_tokens >= 0 ? a.completion_tokens : estimate_tokens(c.answer_text);
    c.output_tokens = completion_tokens;
    c.cost_usd = (std::max(0, prompt_tokens) * w.price_in_per_mtok(current_worker_) +
                  completion_tokens * w.price_out_per_mtok(current_worker_)) / 1e6;
    // No list price (null in the manifest): the worker's mean training cost per call.
    if (!std::isfinite(c.cost_usd)) c.cost_usd = w.expected_call_cost_usd(current_worker_);
    if (!std::isfinite(c.cost_usd)) c.cost_usd = 0.0;
    // The request's current price of this worker (conductor.price_factors), relative to the list price.
    if (q_.price_factor.size() > static_cast<std::size_t>(current_worker_)) c.cost_usd *= q_.price_factor[current_worker_];
    if (a.has_answer_id) {
      c.answer_id = a.answer_id;
    } else {
      // Answer classes for agreement: same normalized text, same class (ids local to this request).
      const auto key = normalize_answer(c.answer_text);
      auto it = text_ids_.find(key);
      c.answer_id = it != text_ids_.end() ? it->second
                                          : (text_ids_[key] = 1000000 + static_cast<int32_t>(text_ids_.size()));
    }
    c.latency_s = earlier_attempts_s_ + (a.simulated_latency_s >= 0 ? a.simulated_latency_s : seconds_since(attempt_t0_));
    prompt_tokens_total_ += prompt_tokens;
    completion_tokens_total_ += completion_tokens;
    stop_reason_ = a.stop_reason.empty() ? "stop" : a.stop_reason;
    call_done(std::move(c), "", stop_reason_);
  }

  // The client went away: the call in flight ends here (not a provider failure) and so does the request.
  void call_failed_cancelled() {
    if (probe_) upstream().breaker.release_probe();
    CallResult c;
    c.worker = current_worker_;
    c.error = kServerError;
    c.latency_s = earlier_attempts_s_ + seconds_since(attempt_t0_);
    call_done(std::move(c), "cancelled", "");
  }

  void call_failed(UpstreamError kind, const std::string& label, double retry_after_s, bool retryable) {
    Upstream& up = upstream();
    if (kind != UpstreamError::kCircuitOpen && kind != UpstreamError::kBadRequest)
      up.breaker.on_failure(Clock::now(), probe_);
    else if (probe_ && kind == UpstreamError::kBadRequest)
      up.breaker.on_success(true);  // the provider answered: it is up
    if (gw_->metrics) gw_->metrics->count_worker_error(current_worker_, kind);
    const double this_attempt = attempt_simulated_s_ >= 0 ? attempt_simulated_s_ : seconds_since(attempt_t0_);
    attempt_simulated_s_ = -1.0;
    earlier_attempts_s_ += this_attempt;
    const GatewayConfig& cfg = gw_->config;
    const bool wait_too_long = retry_after_s > cfg.max_retry_after_s;
    // Once tokens went to the client the answer cannot be taken back: no retry.
    if (retryable && !wait_too_long && attempt_ < cfg.retries && !out_) {
      double wait = backoff_;
      if (retry_after_s >= 0) wait = std::max(wait, retry_after_s);
      backoff_ *= cfg.backoff_multiplier;
      ++attempt_;
      if (retry_after_s >= 0) retry_after_waited_s_ += wait;
      earlier_attempts_s_ += wait;
      if (gw_->metrics) gw_->metrics->count_worker_retry(current_worker_);
      retry_timer_ = std::make_shared<net::steady_timer>(
          strand_, std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait)));
      retry_timer_->async_wait([self = shared_from_this()](boost::system::error_code) { self->attempt(); });
      return;
    }
    CallResult c;
    c.worker = current_worker_;
    c.error = error_code_of(kind);
    c.latency_s = earlier_attempts_s_;
    call_done(std::move(c), label, "");
  }

  void call_done(CallResult c, const std::string& failure, const std::string& stop_reason) {
    const int w = current_worker_;
    tried_[w] = 1;
    route_.push_back(world().workers()[w] + (failure.empty() ? "" : "!" + failure));
    route_json_.push_back({{"worker", world().workers()[w]},
                           {"status", failure.empty() ? "ok" : failure},
                           {"latency_s", c.latency_s},
                           {"cost_usd", c.cost_usd}});
    if (retry_after_waited_s_ > 0) route_json_.back()["retry_after_waited_s"] = retry_after_waited_s_;
    retry_after_waited_s_ = 0.0;
    if (current_fallback_) {
      LoggedStep step;
      step.action = call_action(w);
      step.fallback = true;
      logged_.steps.push_back(step);
    }
    LoggedStep& step = logged_.steps.back();
    step.has_result = true;
    step.result = c;
    step.result.answer_text.clear();
    step.failure = failure;
    results_.push_back(std::move(c));
    stop_reasons_.push_back(stop_reason);
    // The client is gone, tokens of this call went out (its end is the end), or a named worker answered.
    if (cancelled_ || out_ || direct_worker_ >= 0) return finish();
    if (current_fallback_) return next_fallback(results_.back().error == kOk);
    episode_->record_call(results_.back());
    next_step();
  }

  bool answered() const {
    for (const auto& r : results_)
      if (r.error == kOk) return true;
    return false;
  }

  void after_policy() {
    if (!finished_by_policy_ && !answered() && gw_->config.fallback && !cancelled_) {
      // Re-route past the policy's horizon: remaining workers by the policy's last probabilities.
      const auto& actions = world().actions();
      for (int w = 0; w < static_cast<int>(tried_.size()); ++w)
        if (q_.available[w] && !tried_[w]) fallback_order_.push_back(w);
      auto prob_of = [&](int w) {
        for (std::size_t a = 0; a < actions.size() && !last_probs_.empty(); ++a)
          if (actions[a].kind == ActionInfo::Kind::kCall && actions[a].worker == w) return last_probs_[a];
        return 0.f;
      };
      std::stable_sort(fallback_order_.begin(), fallback_order_.end(),
                       [&](int x, int y) { return prob_of(x) > prob_of(y); });
      return next_fallback(false);
    }
    finish();
  }

  void next_fallback(bool got_answer) {
    if (got_answer || fallback_pos_ >= fallback_order_.size() || cancelled_) return finish();
    start_call(fallback_order_[fallback_pos_++], /*fallback=*/true, /*last=*/true);
  }

  std::string answer_id() const {
    return (door_.api == ApiKind::kAnthropic ? "msg_conductor_" : "chatcmpl-conductor-") + std::to_string(completion_id_);
  }

  void finish() {
    if (done_) return;
    done_ = true;
    const LiveWorld& w = world();
    std::string route_header;
    double cost = 0.0, latency = 0.0;
    for (std::size_t i = 0; i < results_.size(); ++i) {
      route_header += (i ? "," : "") + route_[i];
      cost += results_[i].cost_usd;
      latency += results_[i].latency_s;
    }
    if (who_.charge) who_.charge(cost);
    const std::string version = gw_->router->model_version();
    std::vector<std::pair<std::string, std::string>> headers = {
        {"x-conductor-route", route_header},
        {"x-conductor-cost-usd", fmt_g(cost)},
        {"x-conductor-model-version", version},
        {"x-conductor-steps", std::to_string(results_.size())},
        {"x-conductor-request-id", request_id_}};
    const int pick = cancelled_ ? -1 : w.final_call(finish_rule_, results_);
    const json summary = {{"request_id", request_id_},
                          {"route", route_json_},
                          {"finish_rule", finish_rule_},
                          {"cost_usd", cost},
                          {"latency_s", latency},
                          {"model_version", version}};
    const std::string failed = results_.empty() ? "no worker could be called for this request"
                                                : "every worker failed: " + route_header;
    HttpResponse resp;
    if (cancelled_) {
      resp = client_error(door_.api, 499, "the client closed the connection", "cancelled");
    } else if (out_) {
      // Tokens already went out: the stream ends with the summary, or with an error event.
      if (pick >= 0 && pick + 1 == static_cast<int>(results_.size()))
        out_->write(enc_->end(stop_reasons_[pick], prompt_tokens_total_, completion_tokens_total_,
                              {{"conductor", summary}}));
      else
        out_->write(enc_->error("the streamed answer failed: " + route_header, "upstream_error", 502));
      resp.status = pick >= 0 ? 200 : 502;
    } else if (pick < 0) {
      resp = client_error(door_.api, results_.empty() ? 503 : 502, failed, "upstream_error");
    } else {
      const CallResult& chosen = results_[pick];
      const std::string model = w.workers()[chosen.worker];
      if (door_.stream) {
        // The answer is known only now: it goes out as one stream.
        auto enc = make_sse_encoder(door_.api, answer_id(), model, door_.include_usage);
        resp.content_type = "text/event-stream";
        resp.body = enc->begin() + enc->delta(chosen.answer_text) +
                    enc->end(stop_reasons_[pick], prompt_tokens_total_, completion_tokens_total_, {{"conductor", summary}});
        headers.emplace_back("x-conductor-stream", "buffered");
      } else if (door_.api == ApiKind::kAnthropic) {
        resp.body = json{{"id", answer_id()},
                         {"type", "message"},
                         {"role", "assistant"},
                         {"model", model},
                         {"content", json::array({{{"type", "text"}, {"text", chosen.answer_text}}})},
                         {"stop_reason", anthropic_stop_reason_of(stop_reasons_[pick])},
                         {"stop_sequence", nullptr},
                         {"usage", {{"input_tokens", prompt_tokens_total_}, {"output_tokens", completion_tokens_total_}}},
                         {"conductor", summary}}
                        .dump();
      } else {
        resp.body = json{{"id", answer_id()},
                         {"object", "chat.completion"},
                         {"created", static_cast<int64_t>(std::time(nullptr))},
                         {"model", model},
                         {"choices", json::array({{{"index", 0},
                                                   {"message", {{"role", "assistant"}, {"content", chosen.answer_text}}},
                                                   {"finish_reason", stop_reasons_[pick]}}})},
                         {"usage",
                          {{"prompt_tokens", prompt_tokens_total_},
                           {"completion_tokens", completion_tokens_total_},
                           {"total_tokens", prompt_tokens_total_ + completion_tokens_total_}}},
                         {"conductor", summary}}
                        .dump();
      }
    }
    if (pick >= 0) logged_.answered_by = results_[pick].worker;
    logged_.status = resp.status;
    if (gw_->recorder && !logged_.steps.empty() && direct_worker_ < 0) gw_->recorder->record(logged_);
    if (out_) {
      out_->end();
      return;
    }
    resp.headers.insert(resp.headers.end(), headers.begin(), headers.end());
    respond_(std::move(resp));
  }

  std::shared_ptr<Gateway::Impl> gw_;
  net::strand<net::io_context::executor_type> strand_;
  json request_;
  Responder respond_;
  Door door_;
  ClientIdentity who_;
  int direct_worker_ = -1;
  std::shared_ptr<RequestCancel> client_cancel_;
  LiveQuery q_;
  std::unique_ptr<LiveEpisode> episode_;
  Rng rng_;
  std::string request_id_;
  uint64_t completion_id_ = 0;
  LoggedDecision logged_;
  std::vector<CallResult> results_;
  std::vector<std::string> stop_reasons_;
  std::vector<std::string> route_;
  json route_json_ = json::array();
  std::vector<uint8_t> tried_;
  std::vector<float> last_probs_;
  std::string finish_rule_;
  std::string stop_reason_;
  bool finished_by_policy_ = false;
  bool cancelled_ = false;  // the client went away
  bool done_ = false;
  std::map<std::string, int32_t> text_ids_;
  std::vector<int> fallback_order_;
  std::size_t fallback_pos_ = 0;
  long prompt_tokens_total_ = 0, completion_tokens_total_ = 0;
  // Relayed streaming: the client's stream (once the first token went out) and its encoder.
  std::shared_ptr<BodyStream> out_;
  std::unique_ptr<SseEncoder> enc_;
  // The call in progress.
  int current_worker_ = -1;
  bool current_fallback_ = false;
  bool relay_ = false;  // streamed from the provider and relayed as it arrives
  std::unique_ptr<StreamReader> reader_;
  std::optional<ClassifiedError> stream_failure_;
  ConnectionPool::CallCancel call_cancel_;
  std::shared_ptr<net::steady_timer> retry_timer_;
  int attempt_ = 0;
  double backoff_ = 0.0;
  bool probe_ = false;
  Clock::time_point call_t0_, attempt_t0_;
  double earlier_attempts_s_ = 0.0;
  double attempt_simulated_s_ = -1.0;
  double retry_after_waited_s_ = 0.0;
};

void launch(const std::shared_ptr<Gateway::Impl>& gw, json chat, Responder respond, const Door& door, ClientIdentity who,
            int direct, std::shared_ptr<RequestCancel> cancel) {
  gw->in_flight.fetch_add(1);
  auto r = std::make_shared<ChatRequest>(gw, std::move(chat), std::move(respond), door, std::move(who), direct,
                                         std::move(cancel));
  r->start();
}

}  // namespace

Gateway::Gateway(std::shared_ptr<const Router> router, GatewayConfig config)
    : impl_(std::make_shared<Impl>(config.threads)) {
  Impl& g = *impl_;
  g.router = std::move(router);
  g.config = std::move(config);
  const auto& workers = g.router->world().workers();
  g.upstream_of_worker.assign(workers.size(), -1);
  for (std::size_t i = 0; i < g.config.providers.size(); ++i) {
    const ProviderConfig& pc = g.config.providers[i];
    const std::string where = "gateway.providers[" + std::to_string(i) + "]";
    const int w = g.router->worker_index(pc.worker);
    if (w < 0) {
      std::string known;
      for (const auto& n : workers) known += (known.empty() ? "" : ", ") + n;
      fail(where, ": worker '", pc.worker, "' is not a worker of the exported policy (known: ", known, ")");
    }
    if (g.upstream_of_worker[w] >= 0) fail(where, ": worker '", pc.worker, "' is listed twice");
    auto up = std::make_unique<Upstream>(g.config.circuit_breaker);
    up->worker = w;
    up->worker_name = pc.worker;
    up->cfg = pc;
    up->url = parse_url(pc.base_url);
    up->timeout_s = pc.timeout_s > 0 ? pc.timeout_s : g.config.call_timeout_s;
    up->max_concurrency = pc.max_concurrency > 0 ? pc.max_concurrency : g.config.max_concurrency;
    AdapterOptions ao;
    ao.anthropic_version = pc.anthropic_version;
    ao.default_max_tokens = pc.max_tokens;
    up->adapter = make_adapter(pc.api, ao);
    if (!pc.api_key_env.empty()) {
      const char* v = std::getenv(pc.api_key_env.c_str());
      if (!v || !*v)
        fail(where, ": api_key_env names the environment variable '", pc.api_key_env, "', which is not set");
      up->api_key = v;
    }
    if (!pc.ca_file.empty() && !up->url.tls)
      fail(where, ": ca_file is set but base_url '", pc.base_url, "' is not https");
    try {
      up->pool = std::make_unique<ConnectionPool>(g.ioc, up->url, TlsClientConfig{pc.ca_file}, g.config.max_idle_connections,
                                                  g.config.keepalive_idle_s);
    } catch (const Error& e) {
      fail(where, ": ", e.what());
    }
    g.upstream_of_worker[w] = static_cast<int>(g.upstreams.size());
    g.upstreams.push_back(std::move(up));
  }
  g.created = static_cast<int64_t>(std::time(nullptr));
  for (std::size_t w = 0; w < workers.size(); ++w)
    if (g.upstream_of_worker[w] >= 0) g.configured_workers.push_back(workers[w]);
  std::set<std::string> seen;
  for (const auto& d : g.config.direct_workers) {
    if (d == g.config.model_id) fail("gateway.direct_workers: '", d, "' is the conductor's own model_id");
    if (!seen.insert(d).second) fail("gateway.direct_workers: '", d, "' is listed twice");
    const int w = g.router->worker_index(d);
    if (w < 0 || g.upstream_of_worker[w] < 0)
      fail("gateway.direct_workers: '", d, "' is not a worker with a provider (providers: ",
           [&] {
             std::string k;
             for (const auto& n : g.configured_workers) k += (k.empty() ? "" : ", ") + n;
             return k;
           }(),
           ")");
  }
  g.work.emplace(net::make_work_guard(g.ioc));
  for (int t = 0; t < g.config.threads; ++t)
    g.threads.emplace_back([impl = impl_.get()] {
      for (;;) {
        try {
          impl->ioc.run();
          return;
        } catch (const std::exception& e) {  // a bug in a completion handler: log, keep serving
          log_error("gateway: event loop error: ", e.what());
        }
      }
    });
}

Gateway::~Gateway() {
  Impl& g = *impl_;
  for (int waited_ms = 0; g.in_flight.load() > 0 && waited_ms < 30000; waited_ms += 5)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  g.work.reset();
  g.ioc.stop();
  for (auto& t : g.threads)
    if (t.joinable()) t.join();
  // A request still pending here (after 30 s) keeps the Impl alive through its handler: it is
  // released with the process rather than run on a stopped loop.
}

void Gateway::set_metrics(std::shared_ptr<ServerMetrics> metrics) { impl_->metrics = std::move(metrics); }
void Gateway::set_recorder(std::shared_ptr<DecisionRecorder> recorder) { impl_->recorder = std::move(recorder); }
int Gateway::in_flight() const { return impl_->in_flight.load(); }

CircuitBreaker::State Gateway::circuit_state(const std::string& worker) const {
  const int w = impl_->router->worker_index(worker);
  if (w < 0 || impl_->upstream_of_worker[w] < 0) return CircuitBreaker::State::kClosed;
  return impl_->upstreams[impl_->upstream_of_worker[w]]->breaker.state(Clock::now());
}

std::string Gateway::provider_metrics_text() const {
  std::ostringstream o;
  const auto now = Clock::now();
  auto block = [&](const char* name, const char* type, const char* help, auto value) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
    for (const auto& up : impl_->upstreams)
      o << name << "{worker=\"" << up->worker_name << "\"} " << value(*up) << "\n";
  };
  block("conductor_provider_in_flight_calls", "gauge", "Calls in flight to the provider.",
        [](Upstream& u) { return u.load().first; });
  block("conductor_provider_queued_calls", "gauge", "Calls waiting for a concurrency slot.",
        [](Upstream& u) { return u.load().second; });
  block("conductor_provider_max_concurrency", "gauge", "The provider's concurrency limit.",
        [](Upstream& u) { return u.max_concurrency; });
  block("conductor_provider_circuit_state", "gauge",
        "Circuit breaker: 0 closed, 1 open (worker masked), 2 half-open (one probe allowed).",
        [&](Upstream& u) { return static_cast<int>(u.breaker.state(now)); });
  block("conductor_provider_circuit_opens_total", "counter", "Times the provider's circuit opened.",
        [](Upstream& u) { return u.breaker.opens(); });
  block("conductor_provider_connections_opened_total", "counter", "Connections opened (TCP, TLS handshakes).",
        [](Upstream& u) { return u.pool->stats().connections_opened; });
  block("conductor_provider_connections_reused_total", "counter", "Requests sent on a kept-alive connection.",
        [](Upstream& u) { return u.pool->stats().reused; });
  return o.str();
}

namespace {

// The `conductor` extension, validated as /v1/route validates its fields.
void check_conductor_extension(const json& j, const Router& router) {
  if (!j.contains("conductor")) return;
  const json& c = j["conductor"];
  if (!c.is_object())
    bad("'conductor' must be an object {available, budget_usd, cost_weight, price_factors, task, input_tokens, "
        "query_id}, got " +
        type_name(c));
  for (const auto& [k, v] : c.items())
    if (k != "available" && k != "budget_usd" && k != "cost_weight" && k != "price_factors" && k != "task" &&
        k != "input_tokens" && k != Router::kQueryIdField)
      bad("'conductor." + k +
          "' is not a known option (expected available, budget_usd, cost_weight, price_factors, task, input_tokens, "
          "query_id)");
  json probe = c;
  probe["query"] = "(validation only)";  // the query itself comes from the messages
  router.parse_route_request(probe.dump());
}

json parse_body_object(const std::string& body) {
  json j;
  try {
    j = parse_json_body(body);
  } catch (const JsonBodyError& e) {
    bad(e.what());
  }
  if (!j.is_object()) bad("request body must be a JSON object, got " + type_name(j));
  return j;
}

}  // namespace

const std::string& Gateway::model_id() const { return impl_->config.model_id; }

json Gateway::model_object(const std::string& id) const {
  const Impl& g = *impl_;
  const int64_t created = g.created;
  if (id == g.config.model_id)
    return {{"id", id},
            {"object", "model"},
            {"created", created},
            {"owned_by", "conductor"},
            {"conductor", {{"model_version", g.router->model_version()}, {"routes_to", g.configured_workers}}}};
  for (const auto& w : g.config.direct_workers)
    if (w == id) return {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "conductor-direct"}};
  std::string known = g.config.model_id;
  for (const auto& w : g.config.direct_workers) known += ", " + w;
  throw HttpError(404, "The model '" + id + "' does not exist (models: " + known + ")", "not_found");
}

json Gateway::models() const {
  json data = json::array({model_object(impl_->config.model_id)});
  for (const auto& w : impl_->config.direct_workers) data.push_back(model_object(w));
  return {{"object", "list"}, {"data", data}};
}

// The worker a request's `model` names for a direct call (-1: the conductor routes). Throws 404
// for a model that is neither, 403 for a worker the client's key may not use.
int Gateway::Impl::direct_worker_of(const json& j, const ClientIdentity& who) const {
  if (!j.contains("model")) return -1;
  if (!j["model"].is_string()) bad("'model' must be a string, got " + type_name(j["model"]));
  const std::string m = j["model"].get<std::string>();
  if (m == config.model_id) return -1;
  for (const auto& w : config.direct_workers)
    if (w == m) {
      if (!who.workers.empty() && std::find(who.workers.begin(), who.workers.end(), m) == who.workers.end())
        throw HttpError(403, "the API key '" + who.key_id + "' may not use the model '" + m + "'", "permission_error");
      return router->worker_index(m);
    }
  std::string known = config.model_id;
  for (const auto& w : config.direct_workers) known += ", " + w;
  throw HttpError(404, "The model '" + m + "' does not exist or you do not have access to it (models: " + known + ")",
                  "not_found");
}

void Gateway::handle(HttpRequest& req, Responder respond, ClientIdentity who) {
  json j = parse_body_object(req.body);
  if (!j.contains("messages")) bad("missing field 'messages' (an array of {role, content})");
  const json& msgs = j["messages"];
  if (!msgs.is_array() || msgs.empty()) bad("'messages' must be a non-empty array, got " + type_name(msgs));
  bool has_user = false;
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    const json& m = msgs[i];
    const std::string at = "'messages[" + std::to_string(i) + "]";
    if (!m.is_object()) bad(at + "' must be an object, got " + type_name(m));
    if (!m.contains("role") || !m["role"].is_string()) bad(at + ".role' must be a string");
    if (!m.contains("content") || !m["content"].is_string()) bad(at + ".content' must be a string");
    has_user = has_user || m["role"] == "user";
  }
  if (!has_user) bad("'messages' has no message with role 'user'");
  Door door;
  if (j.contains("stream")) {
    if (!j["stream"].is_boolean()) bad("'stream' must be a boolean, got " + type_name(j["stream"]));
    door.stream = j["stream"].get<bool>();
  }
  if (j.contains("stream_options") && !j["stream_options"].is_null()) {
    const json& so = j["stream_options"];
    if (!so.is_object()) bad("'stream_options' must be an object {include_usage}, got " + type_name(so));
    if (!door.stream) bad("'stream_options' is only allowed with stream: true");
    for (const auto& [k, v] : so.items()) {
      if (k != "include_usage") bad("'stream_options." + k + "' is not a known option (expected include_usage)");
      if (!v.is_boolean()) bad("'stream_options.include_usage' must be a boolean, got " + type_name(v));
      door.include_usage = v.get<bool>();
    }
  }
  const int direct = impl_->direct_worker_of(j, who);
  check_conductor_extension(j, *impl_->router);
  launch(impl_, std::move(j), std::move(respond), door, std::move(who), direct, req.cancel);
}

namespace {

// The text of an Anthropic content field: a string, or text blocks (other block types are refused).
std::string anthropic_text(const json& content, const std::string& at) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) bad(at + " must be a string or an array of content blocks, got " + type_name(content));
  std::string text;
  for (std::size_t i = 0; i < content.size(); ++i) {
    const json& b = content[i];
    const std::string where = at + "[" + std::to_string(i) + "]";
    if (!b.is_object() || !b.contains("type") || !b["type"].is_string()) bad(where + " must be a block {type, ...}");
    const std::string type = b["type"].get<std::string>();
    if (type != "text")
      bad(where + ": content blocks of type '" + type + "' are not supported by the conductor gateway (text only)");
    if (!b.contains("text") || !b["text"].is_string()) bad(where + ".text must be a string");
    text += (text.empty() ? "" : "\n\n") + b["text"].get<std::string>();
  }
  return text;
}

}  // namespace

void Gateway::handle_messages(HttpRequest& req, Responder respond, ClientIdentity who) {
  try {
    json a = parse_body_object(req.body);
    for (const auto& [k, v] : a.items())
      if (k != "model" && k != "max_tokens" && k != "messages" && k != "system" && k != "stream" &&
          k != "temperature" && k != "top_p" && k != "top_k" && k != "stop_sequences" && k != "metadata" &&
          k != "conductor")
        bad("'" + k + "' is not supported by the conductor gateway (supported: model, max_tokens, messages, system, "
            "stream, temperature, top_p, top_k, stop_sequences, metadata, conductor)");
    if (!a.contains("max_tokens") || !a["max_tokens"].is_number_integer() || a["max_tokens"].get<int64_t>() < 1)
      bad("'max_tokens' is required: a positive integer");
    if (!a.contains("messages") || !a["messages"].is_array() || a["messages"].empty())
      bad("'messages' must be a non-empty array of {role, content}");
    json chat = {{"messages", json::array()}, {"max_tokens", a["max_tokens"]}};
    if (a.contains("system")) chat["messages"].push_back({{"role", "system"}, {"content", anthropic_text(a["system"], "'system'")}});
    bool has_user = false;
    for (std::size_t i = 0; i < a["messages"].size(); ++i) {
      const json& m = a["messages"][i];
      const std::string at = "'messages[" + std::to_string(i) + "]";
      if (!m.is_object()) bad(at + "' must be an object, got " + type_name(m));
      if (!m.contains("role") || !m["role"].is_string() || (m["role"] != "user" && m["role"] != "assistant"))
        bad(at + ".role' must be \"user\" or \"assistant\"");
      if (!m.contains("content")) bad(at + ".content' is required");
      has_user = has_user || m["role"] == "user";
      chat["messages"].push_back({{"role", m["role"]}, {"content", anthropic_text(m["content"], at + ".content'")}});
    }
    if (!has_user) bad("'messages' has no message with role 'user'");
    for (const char* k : {"temperature", "top_p"})
      if (a.contains(k)) {
        if (!a[k].is_number()) bad(std::string("'") + k + "' must be a number");
        chat[k] = a[k];
      }
    if (a.contains("top_k") && !a["top_k"].is_number_integer()) bad("'top_k' must be an integer");
    if (a.contains("stop_sequences")) {
      if (!a["stop_sequences"].is_array()) bad("'stop_sequences' must be an array of strings");
      for (const auto& x : a["stop_sequences"])
        if (!x.is_string()) bad("'stop_sequences' must be an array of strings");
      chat["stop"] = a["stop_sequences"];
    }
    if (a.contains("metadata") && !a["metadata"].is_object()) bad("'metadata' must be an object");
    Door door;
    door.api = ApiKind::kAnthropic;
    if (a.contains("stream")) {
      if (!a["stream"].is_boolean()) bad("'stream' must be a boolean, got " + type_name(a["stream"]));
      door.stream = a["stream"].get<bool>();
    }
    if (a.contains("model")) chat["model"] = a["model"];
    else bad("'model' is required");
    const int direct = impl_->direct_worker_of(chat, who);
    if (a.contains("conductor")) chat["conductor"] = a["conductor"];
    check_conductor_extension(chat, *impl_->router);
    launch(impl_, std::move(chat), std::move(respond), door, std::move(who), direct, req.cancel);
  } catch (const HttpError& e) {
    respond(client_error(ApiKind::kAnthropic, e.status(), e.what(), e.type()));
  }
}

}  // namespace conductor::serve
