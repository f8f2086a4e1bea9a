#include "serve/redis_usage.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace conductor::serve {

struct RedisUsage::Reply {
  bool is_nil = true;
  bool is_int = false;
  long long integer = 0;
  std::string str;
};

namespace {

timeval to_timeval(double s) {
  timeval tv{};
  tv.tv_sec = static_cast<long>(s);
  tv.tv_usec = static_cast<long>((s - static_cast<double>(tv.tv_sec)) * 1e6);
  return tv;
}

double number_of(const std::string& s, const std::string& what) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (!end || *end != '\0' || !std::isfinite(v)) fail("redis: ", what, " holds '", s.substr(0, 40), "', not a number");
  return v;
}

}  // namespace

RedisUsage::RedisUsage(const std::string& url, double timeout_s) : url_(url), timeout_s_(timeout_s) {
  const std::string prefix = "redis://";
  if (url.rfind(prefix, 0) != 0) fail("auth.redis_url '", url, "': expected redis://host[:port][/db]");
  std::string rest = url.substr(prefix.size());
  const auto slash = rest.find('/');
  if (slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      if (db.size() > 5 || db.find_first_not_of("0123456789") != std::string::npos)
        fail("auth.redis_url '", url, "': the database after '/' must be a number");
      db_ = std::stoi(db);
    }
  }
  if (rest.find('@') != std::string::npos)
    fail("auth.redis_url '", url, "': credentials in the URL are not supported");
  const auto colon = rest.rfind(':');
  host_ = colon == std::string::npos ? rest : rest.substr(0, colon);
  if (colon != std::string::npos) {
    const std::string p = rest.substr(colon + 1);
    if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos)
      fail("auth.redis_url '", url, "': bad port '", p, "'");
    port_ = std::stoi(p);
    if (port_ < 1 || port_ > 65535) fail("auth.redis_url '", url, "': port out of range");
  }
  if (host_.empty()) fail("auth.redis_url '", url, "': missing host");
  // Check the server now: a misconfigured URL stops start-up instead of refusing every request.
  std::lock_guard<std::mutex> lk(mu_);
  idle_.push_back(connect());
}

RedisUsage::~RedisUsage() {
  for (auto* c : idle_) redisFree(c);
}

redisContext* RedisUsage::connect() {
  redisContext* c = redisConnectWithTimeout(host_.c_str(), port_, to_timeval(timeout_s_));
  if (!c || c->err) {
    const std::string why = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    fail("redis ", url_, ": cannot connect: ", why);
  }
  redisSetTimeout(c, to_timeval(timeout_s_));
  if (db_ != 0) {
    auto* r = static_cast<redisReply*>(redisCommand(c, "SELECT %d", db_));
    const bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
    if (!ok) {
      redisFree(c);
      fail("redis ", url_, ": SELECT ", db_, " failed");
    }
  }
  return c;
}

std::vector<RedisUsage::Reply> RedisUsage::run(const std::vector<std::vector<std::string>>& commands) {
  redisContext* c = nullptr;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!idle_.empty()) {
      c = idle_.back();
      idle_.pop_back();
    }
  }
  if (!c) c = connect();
  std::vector<Reply> out;
  std::string error;
  for (const auto& cmd : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : cmd) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
  }
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK || !raw) {
      error = c->err ? c->errstr : "no reply";
      break;
    }
    auto* r = static_cast<redisReply*>(raw);
    Reply rep;
    if (r->type == REDIS_REPLY_ERROR) {
      error = std::string("'") + commands[i][0] + "' failed: " + std::string(r->str, r->len);
    } else if (r->type == REDIS_REPLY_INTEGER) {
      rep.is_nil = false;
      rep.is_int = true;
      rep.integer = r->integer;
    } else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
      rep.is_nil = false;
      rep.str.assign(r->str, r->len);
    } else if (r->type == REDIS_REPLY_ARRAY) {  // MGET: flattened into the replies
      for (std::size_t e = 0; e < r->elements; ++e) {
        Reply el;
        if (r->element[e]->type == REDIS_REPLY_STRING) {
          el.is_nil = false;
          el.str.assign(r->element[e]->str, r->element[e]->len);
        }
        out.push_back(el);
      }
      freeReplyObject(r);
      continue;
    }
    freeReplyObject(r);
    if (!error.empty()) break;
    out.push_back(rep);
  }
  if (!error.empty() || c->err) {
    redisFree(c);  // its state is unknown now: a fresh connection next time
    fail("redis ", url_, ": ", error.empty() ? std::string("connection error") : error);
  }
  std::lock_guard<std::mutex> lk(mu_);
  idle_.push_back(c);
  return out;
}

int64_t RedisUsage::count_request(const std::string& key_id, const UsageWindows& w) {
  const std::string k = "conductor:rpm:" + key_id + ":" + w.minute;
  const auto r = run({{"INCR", k}, {"EXPIRE", k, "120"}});
  if (r.empty() || !r[0].is_int) fail("redis ", url_, ": INCR gave no integer");
  return r[0].integer;
}

std::pair<double, double> RedisUsage::spend(const std::string& key_id, const UsageWindows& w) {
  const std::string base = "conductor:spend:" + key_id;
  const auto r = run({{"MGET", base + ":d:" + w.day, base + ":m:" + w.month}});
  if (r.size() != 2) fail("redis ", url_, ": MGET gave ", r.size(), " values");
  return {r[0].is_nil ? 0.0 : number_of(r[0].str, "the day's spend"),
          r[1].is_nil ? 0.0 : number_of(r[1].str, "the month's spend")};
}

void RedisUsage::add_spend(const std::string& key_id, const UsageWindows& w, double usd) {
  char amount[64];
  std::snprintf(amount, sizeof amount, "%.12g", usd);
  const std::string base = "conductor:spend:" + key_id;
  const std::string d = base + ":d:" + w.day, m = base + ":m:" + w.month;
  run({{"INCRBYFLOAT", d, amount}, {"EXPIRE", d, "172800"}, {"INCRBYFLOAT", m, amount}, {"EXPIRE", m, "2764800"}});
}

}  // namespace conductor::serve
