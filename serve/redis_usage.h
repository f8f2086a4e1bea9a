// API-key counters shared by every gateway replica through Redis (serve/api_keys.h), kept the way
// LiteLLM's proxy keeps them: atomic Redis operations on keys that expire with their window.
//
//   conductor:rpm:<key id>:<YYYYMMDDhhmm>    INCR, EXPIRE 120 s        requests in the minute
//   conductor:spend:<key id>:d:<YYYYMMDD>    INCRBYFLOAT, EXPIRE 2 d   USD spent in the UTC day
//   conductor:spend:<key id>:m:<YYYYMM>      INCRBYFLOAT, EXPIRE 32 d  USD spent in the UTC month
//
// Every operation is one pipelined round trip on a pooled connection (hiredis, blocking, with
// `timeout_s` for connecting and for each reply; Redis is expected on the same host or LAN, where a
// round trip takes a fraction of a millisecond). A failed round trip drops the connection and
// throws conductor::Error; the request is then refused with 503 (serve/api_keys.h): limits are never
// silently skipped.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "serve/api_keys.h"

struct redisContext;

namespace conductor::serve {

class RedisUsage : public UsageStore {
 public:
  // `url`: redis://host[:port][/db] (port 6379, db 0 by default). Connects once to check the server
  // (throws conductor::Error naming the URL when it cannot).
  explicit RedisUsage(const std::string& url, double timeout_s = 0.25);
  ~RedisUsage() override;
  RedisUsage(const RedisUsage&) = delete;
  RedisUsage& operator=(const RedisUsage&) = delete;

  int64_t count_request(const std::string& key_id, const UsageWindows& w) override;
  std::pair<double, double> spend(const std::string& key_id, const UsageWindows& w) override;
  void add_spend(const std::string& key_id, const UsageWindows& w, double usd) override;
  std::string kind() const override { return "redis"; }

 private:
  struct Reply;
  // Runs the commands as one pipeline; returns the replies (throws on any failure).
  std::vector<Reply> run(const std::vector<std::vector<std::string>>& commands);
  redisContext* connect();
  std::string host_;
  int port_ = 6379;
  int db_ = 0;
  std::string url_;
  double timeout_s_;
  std::mutex mu_;
  std::vector<redisContext*> idle_;
};

}  // namespace conductor::serve
