// Provider wire formats for the gateway (`api:` of a provider in serve.yaml) and one error taxonomy.
//
// The gateway speaks OpenAI chat completions to its clients; an adapter turns such a request into
// the provider's own request and the provider's answer back into text, token usage and a stop
// reason:
//
//   openai     POST {base_url}/chat/completions               Authorization: Bearer KEY
//              the request as sent (minus the `conductor` extension), model replaced, stream false;
//              answer choices[0].message.content, usage.prompt_tokens / completion_tokens,
//              choices[0].finish_reason
//   anthropic  POST {base_url}/messages                       x-api-key: KEY, anthropic-version
//              system messages joined into `system` (outside `messages`), consecutive messages of
//              one role merged (the API wants user/assistant turns alternating), `max_tokens`
//              required (the request's max_tokens / max_completion_tokens, else the provider's
//              default), temperature, top_p, stop -> stop_sequences; answer: the text blocks of
//              `content`, usage.input_tokens / output_tokens, stop_reason
//   gemini     POST {base_url}/models/{model}:generateContent  x-goog-api-key: KEY
//              `contents` of {role: user|model, parts: [{text}]}, system messages as
//              `systemInstruction`, generationConfig {maxOutputTokens, temperature, topP,
//              stopSequences}; answer: candidates[0].content.parts[].text,
//              usageMetadata.promptTokenCount / candidatesTokenCount, candidates[0].finishReason
//
// Stop reasons are reported in OpenAI's terms: "stop", "length", "content_filter".
//
// Errors: every failed call is one UpstreamError kind, from the HTTP status and the provider's
// error body, with whether a retry can help:
//
//   kind           from                                                       retry
//   rate_limited   429 (Retry-After honoured)                                 yes (not for OpenAI's insufficient_quota)
//   overloaded     529, 503, Anthropic overloaded_error, Gemini UNAVAILABLE   yes
//   server_error   500, 502, other 5xx                                        yes
//   timeout        504, 408, or no answer within the call's timeout           yes
//   bad_request    400, 404, 413, 422, other 4xx, a blocked prompt            no
//   auth           401, 403                                                   no
//   connect        connection refused / reset, DNS failure                    yes
//   tls            TLS handshake or certificate verification failed           no
//   bad_response   200 with a body the adapter cannot read                    yes
//   circuit_open   not called: the provider's circuit breaker is open         no
#pragma once

#include <memory>
#include <string>

#include "core/json_util.h"
#include "serve/http_client.h"

namespace conductor::serve {

enum class ApiKind { kOpenAI, kAnthropic, kGemini };
const char* api_name(ApiKind k);  // "openai" | "anthropic" | "gemini"
// Throws conductor::Error listing the choices.
ApiKind parse_api(const std::string& name);

enum class UpstreamError {
  kRateLimited = 0,
  kOverloaded,
  kServerError,
  kTimeout,
  kBadRequest,
  kAuth,
  kConnect,
  kTls,
  kBadResponse,
  kCircuitOpen,
};
constexpr int kUpstreamErrorKinds = 10;
const char* upstream_error_name(UpstreamError e);
// Whether another attempt at the same provider can succeed.
bool upstream_error_retryable(UpstreamError e);

struct ProviderAnswer {
  std::string text;
  int prompt_tokens = -1;      // -1: not reported
  int completion_tokens = -1;  // -1: not reported
  std::string stop_reason;     // OpenAI terms
  // The replay providers' extensions (serve/replay_server.h): the answer class for agreement
  // (-1 = not comparable; absent = unknown, the gateway compares texts) and the latency the replay
  // simulates (the trace's logged latency, so a sped-up replay shows the policy the logged values).
  bool has_answer_id = false;
  int32_t answer_id = -1;
  double simulated_latency_s = -1.0;
};

// A request the provider cannot take (a message role its API lacks) or refused for its content (a
// blocked prompt): bad_request, not retried. build() and parse() throw it; other parse failures are
// plain conductor::Error (bad_response).
class RequestRefused : public Error {
 public:
  using Error::Error;
};

struct ClassifiedError {
  UpstreamError kind = UpstreamError::kServerError;
  bool retryable = true;
  double retry_after_s = -1.0;  // from Retry-After (delta-seconds or an HTTP date); -1 = none
  std::string message;          // the provider's error message (never a key)
};

class ProviderAdapter {
 public:
  virtual ~ProviderAdapter() = default;
  virtual ApiKind api() const = 0;
  // The upstream request for an OpenAI-style chat request (`messages` validated by the gateway).
  // `api_key` may be empty (no auth header).
  virtual ClientRequest build(const json& chat_request, const std::string& model, const std::string& api_key) const = 0;
  // Reads a 200 answer. Throws conductor::Error naming the missing or mistyped field.
  virtual ProviderAnswer parse(const std::string& body) const = 0;
  // Maps a non-200 response to the taxonomy.
  ClassifiedError classify(const ClientResponse& response) const;
};

struct AdapterOptions {
  std::string anthropic_version = "2023-06-01";
  int default_max_tokens = 1024;  // anthropic: max_tokens when the request gives none
};

std::unique_ptr<ProviderAdapter> make_adapter(ApiKind api, const AdapterOptions& options = {});

// Retry-After: delta-seconds ("3", "1.5") or an IMF-fixdate ("Wed, 21 Oct 2015 07:28:00 GMT",
// relative to now). -1 when absent or unreadable.
double parse_retry_after(const std::string& value);

}  // namespace conductor::serve
