// In-memory form of a Conductor trace file (HDF5 format version 1, DESIGN.md section 3).
//
// Outcome matrices are row-major [n_queries x n_models]: element (q, m) is at q * n_models + m.
// Missing means "not logged": NaN for floats, -1 for integers (error uses kErrorMissing). A missing
// value is never silently 0.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace conductor {

enum class Split : uint8_t { kTrain = 0, kValidation = 1, kTest = 2 };
// "train" | "validation" | "test" (also accepts "val", "valid"); throws conductor::Error otherwise.
Split parse_split(const std::string& s);
const char* split_name(Split s);

enum ErrorCode : uint8_t { kOk = 0, kTimeout = 1, kRateLimited = 2, kServerError = 3, kErrorMissing = 255 };

constexpr float kMissingF = std::numeric_limits<float>::quiet_NaN();
constexpr double kMissingD = std::numeric_limits<double>::quiet_NaN();
constexpr int32_t kMissingI = -1;

// Bandit-feedback decisions (/decisions/*): one row per logged request.
struct Decisions {
  std::vector<int64_t> query;        // index into queries
  std::vector<int32_t> action;       // chosen model index
  std::vector<double> propensity;    // logging policy's probability of `action`, in (0, 1]
  std::vector<float> quality;        // observed quality of the chosen call (NaN if unknown)
  std::vector<double> cost_usd;
  std::vector<float> latency_s;
  std::vector<int64_t> timestamp_ms;
  std::vector<uint8_t> available;    // [K x M] 1 = model was available for this request
  std::vector<std::string> policy;   // logging policy id
  std::size_t size() const { return action.size(); }
};

struct TraceSet {
  std::string source;  // free text: "routerbench", "synthetic seed=7", ...

  // /models/*
  std::vector<std::string> model_name;
  std::vector<std::string> model_provider;
  std::vector<double> price_in_per_mtok;
  std::vector<double> price_out_per_mtok;

  // /queries/*
  std::vector<std::string> query_id;
  std::vector<std::string> query_task;
  std::vector<std::string> query_text;  // empty vector = no /queries/text dataset
  std::vector<int32_t> input_tokens;
  std::vector<uint8_t> split;
  // /queries/embedding [N x embedding_dim] f32: a sentence encoder's embedding of each query text
  // (`conductor traces embed`, docs/encoder.md); empty = none. Its attributes name the encoder:
  // `model` (a name) and `sha256` (of its weights, policies/query_encoder.h), which a config that
  // asks for the encoder checks.
  std::vector<float> query_embedding;
  int embedding_dim = 0;
  std::string embedding_model;
  std::string embedding_sha256;

  // /outcomes/* [N x M]
  std::vector<float> quality;
  std::vector<double> cost_usd;
  std::vector<float> latency_s;
  std::vector<int32_t> output_tokens;
  std::vector<int32_t> answer;
  std::vector<uint8_t> error;

  bool has_outcomes() const { return !quality.empty(); }
  bool has_decisions() const { return decisions.size() > 0; }
  Decisions decisions;

  std::size_t n_queries() const { return query_id.size(); }
  std::size_t n_models() const { return model_name.size(); }
  std::size_t at(std::size_t q, std::size_t m) const { return q * n_models() + m; }
  bool has_text() const { return !query_text.empty(); }
  bool has_embedding() const { return embedding_dim > 0; }
  const float* embedding_of(std::size_t q) const { return query_embedding.data() + q * static_cast<std::size_t>(embedding_dim); }

  // Resizes every outcome matrix to n_queries x n_models filled with "missing".
  void allocate_outcomes();
  // Index of a model by name, or -1.
  int model_index(const std::string& name) const;
  // Query indices of a split, in file order.
  std::vector<std::size_t> split_indices(Split s) const;

  // Checks shapes, ranges and missing-value conventions; throws conductor::Error naming the
  // dataset (e.g. "/outcomes/quality[12,3]: value 1.5 outside [0, 1]"). `where` prefixes messages.
  void validate(const std::string& where = "") const;
};

// The query of `traces` each logged decision of `logs` was made on (/decisions/query -> a query of
// `traces` with the same id), one index per decision. Ids alone do not identify a query (every
// synthetic world names its queries synth-0000000, ...), so a query found by id must also have the
// logged task (when both are known) and the logged text (when both files hold texts). Throws
// conductor::Error starting with `logs_name` that names the decision, the query id and what differs
// (or that `traces_name` lacks the id, followed by `why_needed`).
std::vector<std::size_t> match_logged_queries(const TraceSet& logs, const std::string& logs_name,
                                              const TraceSet& traces, const std::string& traces_name,
                                              const std::string& why_needed);

}  // namespace conductor
