// Server-sent events of a streamed answer, in the wire format of each API: what the gateway sends
// its clients (OpenAI chat.completion.chunk events on /v1/chat/completions, Anthropic message
// events on /v1/messages) and what the replay providers send the gateway (all three).
//
//   openai     data: {"object": "chat.completion.chunk", "choices": [{"delta": {"role"}}]}   begin
//              data: {... "choices": [{"delta": {"content": "..."}}]}                       each piece
//              data: {... "choices": [{"delta": {}, "finish_reason": "stop"}]}              end
//              data: {... "choices": [], "usage": {...}}                                    end, with include_usage
//              data: [DONE]
//   anthropic  event: message_start, content_block_start, ping                              begin
//              event: content_block_delta {"delta": {"type": "text_delta", "text"}}         each piece
//              event: content_block_stop, message_delta {stop_reason, usage}, message_stop  end
//   gemini     data: {"candidates": [{"content": {"parts": [{"text"}], "role": "model"}}]}  each piece
//              data: {... "finishReason": "STOP"}], "usageMetadata": {...}}                 end
// `extra` fields are merged into the last event's object (the gateway's `conductor` summary, the
// replay providers' conductor_answer_id / conductor_latency_s). error() is the API's error event,
// for a failure after the first byte.
#pragma once

#include <memory>
#include <string>

#include "core/json_util.h"
#include "serve/http_server.h"
#include "serve/providers.h"

namespace conductor::serve {

// "data: <payload>\n\n", with "event: <name>\n" first when `event` is not empty.
std::string sse_event(const std::string& payload, const std::string& event = "");

class SseEncoder {
 public:
  virtual ~SseEncoder() = default;
  virtual std::string begin() = 0;
  virtual std::string delta(const std::string& text) = 0;
  // `stop_reason` in OpenAI terms ("stop", "length", "content_filter", "tool_calls"); tokens < 0:
  // not known (0 is sent).
  virtual std::string end(const std::string& stop_reason, long prompt_tokens, long completion_tokens,
                          const json& extra) = 0;
  // `type` as in the JSON errors (invalid_request_error, upstream_error, ...), `status` the HTTP
  // status it would have had before the first byte.
  virtual std::string error(const std::string& message, const std::string& type, int status) = 0;
};

// `id` is the answer's id (chatcmpl-..., msg_...); `include_usage` (openai) adds the usage event.
std::unique_ptr<SseEncoder> make_sse_encoder(ApiKind api, const std::string& id, const std::string& model,
                                             bool include_usage = true);

// A JSON error in the format of the API a client speaks: OpenAI's {"error": {message, type, code}}
// (serve/http_server.h json_error), or Anthropic's {"type": "error", "error": {type, message}} with
// the Anthropic error type for the status.
HttpResponse client_error(ApiKind api, int status, const std::string& message, const std::string& type);

// The Anthropic stop reason for an OpenAI one ("stop" -> "end_turn", "length" -> "max_tokens", ...).
std::string anthropic_stop_reason_of(const std::string& openai_reason);

}  // namespace conductor::serve
