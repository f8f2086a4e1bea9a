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
// Streaming (build_stream / stream_reader): the same request asking for server-sent events, and a
// reader that turns the provider's events into text pieces as they arrive:
//   openai     "stream": true, "stream_options": {"include_usage": true}; `data: {chunk}` events
//              (choices[0].delta.content, finish_reason, a last chunk with usage), `data: [DONE]`
//   anthropic  "stream": true; message_start (usage.input_tokens), content_block_delta
//              (text_delta), message_delta (stop_reason, usage.output_tokens), message_stop; ping
//              ignored; an `error` event fails the call
//   gemini     POST {base_url}/models/{model}:streamGenerateContent?alt=sse; every event a
//              GenerateContentResponse with the next parts' text, the last with finishReason and
//              usageMetadata
// An error event in the stream is classified like an error status (below); a stream that ends
// without its end marker (finish reason / message_stop / [DONE]) is a bad_response.
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
#include <vector>

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
  // The replay providers' extensions (serve/sim/replay_server.h): the answer class for agreement
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

// An error event inside a streamed answer, classified like an error status.
class StreamFailure : public Error {
 public:
  explicit StreamFailure(ClassifiedError e) : Error(e.message), error_(std::move(e)) {}
  const ClassifiedError& error() const { return error_; }

 private:
  ClassifiedError error_;
};

// Reads one streamed 200 answer (server-sent events). feed() takes the body as it arrives (any
// split) and appends the answer's text pieces to `text` in order; finish() at the end of the body
// gives the whole answer as parse() would. Both throw StreamFailure for an error event,
// RequestRefused for a blocked prompt, conductor::Error for an event they cannot read or (finish)
// a stream that ended before its end marker.
class StreamReader {
 public:
  virtual ~StreamReader() = default;
  void feed(const std::string& bytes, std::vector<std::string>* text);
  ProviderAnswer finish();

 protected:
  // One event: its `event:` name ("" when none) and its data lines joined by '\n'.
  virtual void on_event(const std::string& event, const std::string& data, std::vector<std::string>* text) = 0;
  // Whether the provider's end marker has been seen.
  virtual bool complete() const = 0;
  virtual const char* where() const = 0;
  ProviderAnswer answer_;

 private:
  void on_line(std::string line, std::vector<std::string>* text);
  std::string partial_;   // an incomplete line
  std::string event_, data_;
  bool has_data_ = false;
};

class ProviderAdapter {
 public:
  virtual ~ProviderAdapter() = default;
  virtual ApiKind api() const = 0;
  // The upstream request for an OpenAI-style chat request (`messages` validated by the gateway).
  // `api_key` may be empty (no auth header).
  virtual ClientRequest build(const json& chat_request, const std::string& model, const std::string& api_key) const = 0;
  // The same request asking for a streamed answer.
  virtual ClientRequest build_stream(const json& chat_request, const std::string& model,
                                     const std::string& api_key) const = 0;
  // Reads a 200 answer. Throws conductor::Error naming the missing or mistyped field.
  virtual ProviderAnswer parse(const std::string& body) const = 0;
  // A reader for one streamed 200 answer.
  virtual std::unique_ptr<StreamReader> stream_reader() const = 0;
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
