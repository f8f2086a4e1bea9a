#include "traces/import_jsonl.h"

#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <unordered_map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "traces/tokens.h"

namespace conductor {
namespace {

// Typed access to one line's JSON object; every error names FILE:LINE and the field path.
struct Line {
  const json& j;
  std::string where;

  [[noreturn]] void bad(const std::string& field, const std::string& expected, const json& got) const {
    fail(where, ": field '", field, "': expected ", expected, ", got ", describe_json(got));
  }
  [[noreturn]] void missing(const std::string& field, const std::string& expected) const {
    fail(where, ": field '", field, "': missing (expected ", expected, ")");
  }
  void only_keys(const json& obj, const std::string& prefix, std::initializer_list<const char*> keys) const {
    for (const auto& [k, v] : obj.items()) {
      bool ok = false;
      for (const char* a : keys) ok = ok || k == a;
      if (ok) continue;
      std::string valid;
      for (const char* a : keys) valid += std::string(valid.empty() ? "" : ", ") + a;
      fail(where, ": field '", prefix + k, "': unknown field (valid: ", valid, ")");
    }
  }
  static const json* find(const json& obj, const char* key) {
    const auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
  }
  std::optional<std::string> str(const json& obj, const std::string& path, const char* key, bool required,
                                 bool non_empty = true) const {
    const json* v = find(obj, key);
    if (!v) {
      if (required) missing(path + key, non_empty ? "a non-empty string" : "a string");
      return std::nullopt;
    }
    if (!v->is_string() || (non_empty && v->get_ref<const std::string&>().empty()))
      bad(path + key, non_empty ? "a non-empty string" : "a string", *v);
    return v->get<std::string>();
  }
  // A number in [lo, hi] (lo excluded when lo_open); null or absent -> NaN unless required.
  double number(const json& obj, const std::string& path, const char* key, double lo, double hi, bool lo_open,
                bool required, const std::string& expected) const {
    const json* v = find(obj, key);
    if (!v || v->is_null()) {
      if (required) v ? bad(path + key, expected, *v) : missing(path + key, expected);
      return std::nan("");
    }
    if (!v->is_number()) bad(path + key, expected, *v);
    const double x = v->get<double>();
    if (!(lo_open ? x > lo : x >= lo) || !(x <= hi)) bad(path + key, expected, *v);
    return x;
  }
  // An integer >= 0; null or absent -> -1.
  int64_t count(const json& obj, const std::string& path, const char* key, int64_t hi, const std::string& expected) const {
    const json* v = find(obj, key);
    if (!v || v->is_null()) return -1;
    if (!v->is_number_integer()) bad(path + key, expected, *v);
    if (v->is_number_unsigned() ? v->get<uint64_t>() > static_cast<uint64_t>(hi)
                                : (v->get<int64_t>() < 0 || v->get<int64_t>() > hi))
      bad(path + key, expected, *v);
    return v->get<int64_t>();
  }
};

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kMaxI32 = std::numeric_limits<int32_t>::max();

uint8_t parse_error_code(const Line& L, const json& obj, const std::string& path) {
  const json* v = Line::find(obj, "error");
  const char* expected = "\"ok\", \"timeout\", \"rate_limited\", \"server_error\" or 0-3";
  if (!v || v->is_null()) return kOk;
  if (v->is_string()) {
    const auto& s = v->get_ref<const std::string&>();
    if (s == "ok") return kOk;
    if (s == "timeout") return kTimeout;
    if (s == "rate_limited") return kRateLimited;
    if (s == "server_error") return kServerError;
  } else if (v->is_number_integer() && v->get<int64_t>() >= 0 && v->get<int64_t>() <= 3) {
    return static_cast<uint8_t>(v->get<int64_t>());
  }
  L.bad(path + "error", expected, *v);
}

// Query metadata a line may give; absent fields are filled by other lines or defaults.
struct QueryMeta {
  std::string id;
  std::optional<std::string> task, text;
  std::optional<uint8_t> split;
  std::optional<int32_t> input_tokens;
};

QueryMeta parse_query_meta(const Line& L, const char* id_key) {
  QueryMeta m;
  m.id = *L.str(L.j, "", id_key, true);
  m.task = L.str(L.j, "", "task", false);
  m.text = L.str(L.j, "", "text", false, /*non_empty=*/false);
  if (const auto s = L.str(L.j, "", "split", false)) {
    if (*s == "train") m.split = static_cast<uint8_t>(Split::kTrain);
    else if (*s == "validation") m.split = static_cast<uint8_t>(Split::kValidation);
    else if (*s == "test") m.split = static_cast<uint8_t>(Split::kTest);
    else L.bad("split", "\"train\", \"validation\" or \"test\"", L.j["split"]);
  }
  const int64_t tok = L.count(L.j, "", "input_tokens", kMaxI32, "an integer >= 0 or null");
  if (tok >= 0) m.input_tokens = static_cast<int32_t>(tok);
  return m;
}

struct Cell {
  std::string model;
  float quality;
  double cost;
  float latency;
  int32_t output_tokens, answer;
  uint8_t error;
};

struct DecisionRow {
  std::size_t query;
  std::string chosen;
  double propensity;
  float quality;
  double cost;
  float latency;
  int64_t timestamp_ms;
  std::vector<std::string> available;
  std::string policy;
  std::string request_id;  // serving logs: joins feedback rows
  std::string where;
};

struct ModelDecl {
  std::string provider;
  double pin = kMissingD, pout = kMissingD;
  std::string where;
};

class Builder {
 public:
  void line(const std::string& where, const json& j) {
    Line L{j, where};
    if (!j.is_object()) fail(where, ": expected a JSON object, got ", describe_json(j));
    const auto type = L.str(j, "", "type", true);
    if (*type == "model") model_line(L);
    else if (*type == "query") query_line(L);
    else if (*type == "decision") decision_line(L);
    else if (*type == "feedback") feedback_line(L);
    else if (*type == "log_gap") gap_line(L);
    else L.bad("type", "\"model\", \"query\", \"decision\", \"feedback\" or \"log_gap\"", j["type"]);
  }

  // Serving logs: joins feedback to decisions by request id (the last label of a request wins) and
  // says what could not be joined or was lost.
  void join_feedback(ImportReport& report) {
    std::size_t joined = 0;
    std::unordered_map<std::string, std::size_t> by_request;
    for (std::size_t i = 0; i < decisions_.size(); ++i)
      if (!decisions_[i].request_id.empty()) by_request[decisions_[i].request_id] = i;
    std::size_t unmatched = 0;
    std::string first_unmatched;
    for (const auto& [id, fb] : feedback_) {
      const auto it = by_request.find(id);
      if (it == by_request.end()) {
        if (unmatched++ == 0) first_unmatched = fb.where;
        continue;
      }
      decisions_[it->second].quality = fb.quality;
      ++joined;
    }
    if (!feedback_.empty())
      report.notes.push_back("feedback: " + std::to_string(feedback_rows_) + " row(s) for " +
                             std::to_string(feedback_.size()) + " request(s); " + std::to_string(joined) +
                             " joined to their decision" +
                             (unmatched ? ", " + std::to_string(unmatched) +
                                              " name a request id with no decision in the input (first: " +
                                              first_unmatched + "); ignored"
                                        : std::string()));
    if (gap_rows_ > 0)
      report.notes.push_back("the log records " + std::to_string(dropped_rows_) + " row(s) dropped by the server (" +
                             std::to_string(gap_rows_) + " log_gap row(s): queue full or write error)");
  }

  TraceSet finish(const std::string& source) {
    TraceSet t;
    t.source = source;
    for (const auto& name : models_) {
      t.model_name.push_back(name);
      const auto it = decl_.find(name);
      if (it != decl_.end()) {
        t.model_provider.push_back(it->second.provider.empty() ? provider_from_name(name) : it->second.provider);
        t.price_in_per_mtok.push_back(it->second.pin);
        t.price_out_per_mtok.push_back(it->second.pout);
      } else {
        t.model_provider.push_back(provider_from_name(name));
        t.price_in_per_mtok.push_back(kMissingD);
        t.price_out_per_mtok.push_back(kMissingD);
      }
    }
    bool any_text = false;
    for (const auto& q : queries_) any_text = any_text || q.text.has_value();
    for (const auto& q : queries_) {
      t.query_id.push_back(q.id);
      t.query_task.push_back(q.task.value_or("unknown"));
      if (any_text) t.query_text.push_back(q.text.value_or(""));
      t.input_tokens.push_back(q.input_tokens ? *q.input_tokens : q.text ? estimate_tokens(*q.text) : kMissingI);
      t.split.push_back(q.split.value_or(static_cast<uint8_t>(Split::kTrain)));
    }
    if (!rows_.empty()) {
      t.allocate_outcomes();
      for (const auto& [q, cells] : rows_)
        for (const auto& c : cells) {
          const std::size_t i = t.at(q, index_.at(c.model));
          t.quality[i] = c.quality;
          t.cost_usd[i] = c.cost;
          t.latency_s[i] = c.latency;
          t.output_tokens[i] = c.output_tokens;
          t.answer[i] = c.answer;
          t.error[i] = c.error;
        }
    }
    Decisions& d = t.decisions;
    const std::size_t M = models_.size();
    for (const auto& r : decisions_) {
      d.query.push_back(static_cast<int64_t>(r.query));
      d.action.push_back(static_cast<int32_t>(index_.at(r.chosen)));
      d.propensity.push_back(r.propensity);
      d.quality.push_back(r.quality);
      d.cost_usd.push_back(r.cost);
      d.latency_s.push_back(r.latency);
      d.timestamp_ms.push_back(r.timestamp_ms);
      std::vector<uint8_t> mask(M, 0);
      for (const auto& a : r.available) mask[index_.at(a)] = 1;
      d.available.insert(d.available.end(), mask.begin(), mask.end());
      d.policy.push_back(r.policy);
    }
    return t;
  }

 private:
  void model_line(const Line& L) {
    L.only_keys(L.j, "", {"type", "name", "provider", "price_in_per_mtok", "price_out_per_mtok", "meta"});
    const std::string name = *L.str(L.j, "", "name", true);
    ModelDecl d;
    d.provider = L.str(L.j, "", "provider", false).value_or("");
    d.pin = L.number(L.j, "", "price_in_per_mtok", 0, kInf, false, false, "a price >= 0 (USD per 1M tokens) or null");
    d.pout = L.number(L.j, "", "price_out_per_mtok", 0, kInf, false, false, "a price >= 0 (USD per 1M tokens) or null");
    d.where = L.where;
    const auto it = decl_.find(name);
    if (it != decl_.end()) fail(L.where, ": field 'name': model '", name, "' is already declared on ", earlier_place(L.where, it->second.where));
    // Commit.
    add_model(name);
    decl_[name] = d;
  }

  void query_line(const Line& L) {
    L.only_keys(L.j, "", {"type", "id", "task", "text", "split", "input_tokens", "outcomes", "meta"});
    const QueryMeta meta = parse_query_meta(L, "id");
    const json* outcomes = Line::find(L.j, "outcomes");
    if (!outcomes) L.missing("outcomes", "an object of model -> outcome");
    if (!outcomes->is_object()) L.bad("outcomes", "an object of model -> outcome", *outcomes);
    std::vector<Cell> cells;
    for (const auto& [model, o] : outcomes->items()) {
      const std::string p = "outcomes." + model + ".";
      if (model.empty()) fail(L.where, ": field 'outcomes': empty model name");
      if (!o.is_object()) L.bad("outcomes." + model, "an object {\"quality\": ..., \"cost_usd\": ..., ...}", o);
      L.only_keys(o, p, {"quality", "cost_usd", "latency_s", "output_tokens", "answer", "error"});
      Cell c;
      c.model = model;
      c.quality = static_cast<float>(L.number(o, p, "quality", 0, 1, false, false, "a number in [0, 1] or null"));
      c.cost = L.number(o, p, "cost_usd", 0, kInf, false, false, "a cost >= 0 (USD) or null");
      c.latency = static_cast<float>(L.number(o, p, "latency_s", 0, kInf, false, false, "a duration >= 0 (seconds) or null"));
      c.output_tokens = static_cast<int32_t>(L.count(o, p, "output_tokens", kMaxI32, "an integer >= 0 or null"));
      c.answer = static_cast<int32_t>(L.count(o, p, "answer", kMaxI32, "an answer class id >= 0 or null"));
      c.error = parse_error_code(L, o, p);
      cells.push_back(c);
    }
    const auto existing = query_index_.find(meta.id);
    if (existing != query_index_.end() && rows_.count(existing->second))
      fail(L.where, ": field 'id': duplicate query '", meta.id, "' (its outcomes are already on ",
           earlier_place(L.where, queries_[existing->second].where), ")");
    const std::size_t q = merge_query(L, meta);
    for (const auto& c : cells) add_model(c.model);
    rows_[q] = std::move(cells);
    queries_[q].where = L.where;
  }

  void decision_line(const Line& L) {
    L.only_keys(L.j, "", {"type", "query_id", "task", "text", "split", "input_tokens", "chosen", "propensity",
                          "quality", "cost_usd", "latency_s", "timestamp_ms", "available", "policy", "meta",
                          // written by `conductor serve --log-dir` (docs/production.md)
                          "request_id", "endpoint", "exploration", "max_steps", "steps", "answered_by", "status",
                          "budget_usd", "cost_weight", "price_factors", "key_id"});
    const QueryMeta meta = parse_query_meta(L, "query_id");
    DecisionRow r;
    r.where = L.where;
    if (const auto id = L.str(L.j, "", "request_id", false)) {
      const auto it = request_where_.find(*id);
      if (it != request_where_.end())
        fail(L.where, ": field 'request_id': duplicate request '", *id, "' (also on ", earlier_place(L.where, it->second),
             ")");
      r.request_id = *id;
    }
    L.str(L.j, "", "endpoint", false);
    L.str(L.j, "", "key_id", false);
    L.str(L.j, "", "exploration", false);
    if (const json* ab = Line::find(L.j, "answered_by"); ab && !ab->is_null()) L.str(L.j, "", "answered_by", false);
    L.count(L.j, "", "max_steps", kMaxI32, "an integer >= 0");
    L.count(L.j, "", "status", 999, "an HTTP status");
    L.number(L.j, "", "budget_usd", 0, kInf, false, false, "a budget >= 0 (USD) or null");
    L.number(L.j, "", "cost_weight", -kInf, kInf, false, false, "a number or null");
    if (const json* pf = Line::find(L.j, "price_factors"); pf && !pf->is_null()) {
      if (!pf->is_object()) L.bad("price_factors", "an object {worker: current price / list price}", *pf);
      for (const auto& [name, f] : pf->items())
        if (!f.is_number() || f.get<double>() < 0) L.bad("price_factors." + name, "a number >= 0", f);
    }
    if (const json* st = Line::find(L.j, "steps"); st && !st->is_array())
      L.bad("steps", "an array of steps {action, propensity, ...}", *st);
    r.chosen = *L.str(L.j, "", "chosen", true);
    r.propensity = L.number(L.j, "", "propensity", 0, 1, true, true, "a probability in (0, 1]");
    r.quality = static_cast<float>(L.number(L.j, "", "quality", 0, 1, false, false, "a number in [0, 1] or null"));
    r.cost = L.number(L.j, "", "cost_usd", 0, kInf, false, false, "a cost >= 0 (USD) or null");
    r.latency = static_cast<float>(L.number(L.j, "", "latency_s", 0, kInf, false, false, "a duration >= 0 (seconds) or null"));
    r.timestamp_ms = L.count(L.j, "", "timestamp_ms", std::numeric_limits<int64_t>::max(),
                             "milliseconds since the Unix epoch (an integer >= 0) or null");
    r.policy = L.str(L.j, "", "policy", false, false).value_or("");
    const json* av = Line::find(L.j, "available");
    const char* av_expected = "a non-empty array of model names that includes 'chosen'";
    if (!av) L.missing("available", av_expected);
    if (!av->is_array() || av->empty()) L.bad("available", av_expected, *av);
    bool has_chosen = false;
    for (std::size_t k = 0; k < av->size(); ++k) {
      const json& a = (*av)[k];
      if (!a.is_string() || a.get_ref<const std::string&>().empty())
        L.bad("available[" + std::to_string(k) + "]", "a model name", a);
      const std::string& name = a.get_ref<const std::string&>();
      for (const auto& prev : r.available)
        if (prev == name) L.bad("available[" + std::to_string(k) + "]", "each model once", a);
      has_chosen = has_chosen || name == r.chosen;
      r.available.push_back(name);
    }
    if (!has_chosen) L.bad("available", av_expected + std::string(" ('") + r.chosen + "')", *av);
    r.query = merge_query(L, meta);
    for (const auto& a : r.available) add_model(a);
    if (!r.request_id.empty()) request_where_[r.request_id] = L.where;
    decisions_.push_back(std::move(r));
  }

  // {"type": "feedback", "request_id", "quality", "timestamp_ms"?, "source"?}: a quality label of a
  // served decision (POST /v1/feedback), joined to it by request id.
  void feedback_line(const Line& L) {
    L.only_keys(L.j, "", {"type", "request_id", "quality", "timestamp_ms", "source", "meta"});
    const std::string id = *L.str(L.j, "", "request_id", true);
    const double q = L.number(L.j, "", "quality", 0, 1, false, true, "a number in [0, 1]");
    L.count(L.j, "", "timestamp_ms", std::numeric_limits<int64_t>::max(), "milliseconds since the Unix epoch");
    L.str(L.j, "", "source", false, false);
    feedback_[id] = Feedback{static_cast<float>(q), L.where};
    ++feedback_rows_;
  }

  // {"type": "log_gap", "dropped": N, "timestamp_ms"}: rows the server could not log.
  void gap_line(const Line& L) {
    L.only_keys(L.j, "", {"type", "dropped", "timestamp_ms", "meta"});
    const int64_t n = L.count(L.j, "", "dropped", std::numeric_limits<int64_t>::max(), "an integer >= 0");
    if (n < 0) L.missing("dropped", "an integer >= 0");
    dropped_rows_ += static_cast<std::size_t>(n);
    ++gap_rows_;
  }

  // Finds or creates the query; metadata given on this line must agree with earlier lines.
  // Checks everything before changing anything, so a failing line leaves no trace.
  std::size_t merge_query(const Line& L, const QueryMeta& meta) {
    const auto it = query_index_.find(meta.id);
    Query* q = it == query_index_.end() ? nullptr : &queries_[it->second];
    if (q) {
      auto conflict = [&](const char* field, const std::string& now, const std::string& before, const std::string& at) {
        fail(L.where, ": field '", field, "': '", now, "' differs from '", before, "' given for query '", meta.id,
             "' on ", earlier_place(L.where, at));
      };
      if (meta.task && q->task && *meta.task != *q->task) conflict("task", *meta.task, *q->task, q->given_at["task"]);
      if (meta.text && q->text && *meta.text != *q->text)
        conflict("text", meta.text->substr(0, 40), q->text->substr(0, 40), q->given_at["text"]);
      if (meta.split && q->split && *meta.split != *q->split)
        conflict("split", split_name(static_cast<Split>(*meta.split)), split_name(static_cast<Split>(*q->split)),
                 q->given_at["split"]);
      if (meta.input_tokens && q->input_tokens && *meta.input_tokens != *q->input_tokens)
        conflict("input_tokens", std::to_string(*meta.input_tokens), std::to_string(*q->input_tokens),
                 q->given_at["input_tokens"]);
    } else {
      query_index_[meta.id] = queries_.size();
      queries_.emplace_back();
      q = &queries_.back();
      q->id = meta.id;
      q->where = L.where;
    }
    auto take = [&](auto& mine, const auto& given, const char* field) {
      if (!mine && given) {
        mine = given;
        q->given_at[field] = L.where;
      }
    };
    take(q->task, meta.task, "task");
    take(q->text, meta.text, "text");
    take(q->split, meta.split, "split");
    take(q->input_tokens, meta.input_tokens, "input_tokens");
    return query_index_.at(meta.id);
  }

  void add_model(const std::string& name) {
    if (index_.count(name)) return;
    index_[name] = models_.size();
    models_.push_back(name);
  }

  struct Query : QueryMeta {
    std::string where;  // FILE:LINE of the line that created it (or gave its outcomes)
    std::map<std::string, std::string> given_at;  // field -> FILE:LINE that set it
  };
  std::vector<Query> queries_;
  std::unordered_map<std::string, std::size_t> query_index_;
  std::vector<std::string> models_;
  std::unordered_map<std::string, std::size_t> index_;
  std::unordered_map<std::string, ModelDecl> decl_;
  std::unordered_map<std::size_t, std::vector<Cell>> rows_;
  std::vector<DecisionRow> decisions_;
  struct Feedback {
    float quality;
    std::string where;
  };
  std::unordered_map<std::string, Feedback> feedback_;
  std::unordered_map<std::string, std::string> request_where_;
  std::size_t feedback_rows_ = 0, gap_rows_ = 0, dropped_rows_ = 0;
};

}  // namespace

TraceSet import_jsonl(const std::vector<std::string>& inputs, const ImportOptions& options, ImportReport& report) {
  const auto files = expand_inputs(inputs, {".jsonl", ".ndjson"}, "JSONL log files");
  Builder b;
  std::string source = "jsonl:";
  std::size_t good = 0, truncated = 0;
  std::string first_truncated;
  for (const auto& path : files) {
    source += " " + base_name(path);
    const std::string text = read_file(path);
    std::size_t line_no = 0, start = 0;
    while (start < text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(start, end - start);
      start = end + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines carry nothing
      ++report.records;
      const std::string where = path + ":" + std::to_string(line_no);
      try {
        json j;
        try {
          j = json::parse(line);
        } catch (const json::parse_error& e) {
          std::string msg = e.what();
          const auto colon = msg.find(": ", msg.find("parse error"));
          if (colon != std::string::npos) msg = msg.substr(colon + 2);
          // The last line of a file without its line break is a row cut short (e.g. a server killed
          // while writing its decision log): skipped and reported, never an error.
          if (end == text.size()) {
            --report.records;
            if (truncated++ == 0) first_truncated = where;
            continue;
          }
          fail(where, ": invalid JSON (column ", e.byte, "): ", msg);
        }
        b.line(where, j);
        ++good;
      } catch (const Error& e) {
        report.bad_record(options, e);
      }
    }
  }
  if (truncated > 0)
    report.notes.push_back(std::to_string(truncated) + " incomplete last line(s) skipped (no line break, not valid JSON: " +
                           "a write cut short), first: " + first_truncated);
  if (good == 0) fail("no valid lines in the JSONL input (", report.records, " lines read, ", report.skipped, " skipped)");
  b.join_feedback(report);
  return b.finish(source);
}

}  // namespace conductor
