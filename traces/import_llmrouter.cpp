#include "traces/import_llmrouter.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "traces/tokens.h"

namespace conductor {
namespace {

bool name_has(const std::string& path, const char* word) { return base_name(path).find(word) != std::string::npos; }

// Split from a file name; -1 when the name says nothing.
int split_of(const std::string& path) {
  if (name_has(path, "train")) return static_cast<int>(Split::kTrain);
  if (name_has(path, "test")) return static_cast<int>(Split::kTest);
  if (name_has(path, "val")) return static_cast<int>(Split::kValidation);
  return -1;
}

struct TaskEntry {
  std::string task;
  int32_t output_tokens = kMissingI;
};

// question text -> task, one map per task-map file (first occurrence wins within a file).
struct TaskMap {
  std::string path;
  int split = -1;
  std::unordered_map<std::string, TaskEntry> by_question;
};

TaskMap load_task_map(const std::string& path, const std::string& text, const ImportOptions& options,
                      ImportReport& report) {
  TaskMap tm;
  tm.path = path;
  tm.split = split_of(path);
  std::size_t line_no = 0, start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const std::string where = path + ":" + std::to_string(line_no);
      json j;
      try {
        j = json::parse(line);
      } catch (const json::parse_error& e) {
        fail(where, ": invalid JSON at column ", e.byte, ": ", e.what());
      }
      if (!j.is_object()) fail(where, ": expected a JSON object, got ", describe_json(j));
      auto str = [&](const char* key) -> std::string {
        const auto it = j.find(key);
        if (it == j.end()) fail(where, ": field '", key, "': missing (expected a string)");
        if (!it->is_string()) fail(where, ": field '", key, "': expected a string, got ", describe_json(*it));
        return it->get<std::string>();
      };
      const std::string q = str("query"), task = str("task_name");
      if (task.empty()) fail(where, ": field 'task_name': expected a non-empty string, got \"\"");
      TaskEntry e{task, kMissingI};
      const auto gt = j.find("ground_truth");
      if (gt != j.end() && gt->is_string()) e.output_tokens = std::max<int32_t>(1, estimate_tokens(gt->get<std::string>()));
      else if (gt != j.end() && !gt->is_null()) e.output_tokens = std::max<int32_t>(1, estimate_tokens(gt->dump()));
      tm.by_question.emplace(q, e);
    } catch (const Error& e) {
      report.bad_record(options, e);
    }
  }
  return tm;
}

// One scored-question file (a JSON array) and the split its name says.
struct ScoreFile {
  std::string path, text;
  json data;
  int split;
};

// The input files sorted by kind: score files, task maps and the one price table.
struct LlmRouterInputs {
  std::vector<ScoreFile> score_files;
  std::vector<TaskMap> task_maps;
  std::string price_path;
  json prices;
};

LlmRouterInputs read_inputs(const std::vector<std::string>& files, const ImportOptions& options,
                            ImportReport& report) {
  LlmRouterInputs in;
  for (const auto& path : files) {
    const std::string text = read_file(path);
    if (path.size() >= 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0) {
      in.task_maps.push_back(load_task_map(path, text, options, report));
      continue;
    }
    json j = parse_json_with_lines(text, path);
    if (j.is_object()) {
      if (!in.price_path.empty())
        fail(path, ": a second price table (the first was ", in.price_path, "); pass exactly one default_llm.json");
      in.price_path = path;
      in.prices = std::move(j);
    } else if (j.is_array()) {
      const int split = split_of(path);
      if (split < 0)
        fail(path, ": cannot tell the split from the file name (expected 'train', 'val' or 'test' in the name)");
      in.score_files.push_back({path, text, std::move(j), split});
    } else {
      fail(path, ":1: expected a JSON array of scored questions or an object of model prices, got ", j.type_name());
    }
  }
  if (in.score_files.empty()) fail("no score files (JSON arrays such as train.json / test.json) among the inputs");
  if (in.price_path.empty()) fail("no price table (default_llm.json) among the inputs: costs need it");
  if (in.task_maps.empty())
    fail("no task maps (default_query_*.jsonl) among the inputs: tasks and output-token estimates need them");
  return in;
}

struct LlmPrice {
  double in = kMissingD, out = kMissingD;
  std::string service;
};

// Prices: model -> (in, out, service).
std::unordered_map<std::string, LlmPrice> parse_prices(const std::string& price_path, const json& prices) {
  std::unordered_map<std::string, LlmPrice> price_of;
  for (const auto& [model, entry] : prices.items()) {
    const std::string where = price_path + ": model '" + model + "'";
    if (!entry.is_object()) fail(where, ": expected an object with input_price and output_price, got ", describe_json(entry));
    LlmPrice p;
    for (const char* key : {"input_price", "output_price"}) {
      const auto it = entry.find(key);
      if (it == entry.end()) fail(where, ": field '", key, "': missing (expected USD per 1M tokens)");
      if (!it->is_number() || it->get<double>() < 0)
        fail(where, ": field '", key, "': expected a non-negative number (USD per 1M tokens), got ", describe_json(*it));
      (std::string(key) == "input_price" ? p.in : p.out) = it->get<double>();
    }
    const auto svc = entry.find("service");
    if (svc != entry.end() && svc->is_string()) p.service = svc->get<std::string>();
    price_of[model] = p;
  }
  return price_of;
}

struct Entry {
  std::string id, question, task;
  uint8_t split;
  int32_t output_tokens;
  std::vector<std::pair<std::string, double>> scores;  // NaN = null
};

// Entry k of a score file, checked whole; throws Error (with file:line) when it is invalid.
Entry parse_entry(const ScoreFile& sf, std::size_t k, const std::vector<std::size_t>& lines,
                  const std::vector<TaskMap>& task_maps) {
  const std::size_t line = k < lines.size() ? lines[k] : 0;
  const std::string where = sf.path + ":" + std::to_string(line) + ": entry " + std::to_string(k);
  const json& e = sf.data[k];
  if (!e.is_object()) fail(where, ": expected an object {\"question\": ..., \"scores\": {...}}, got ", describe_json(e));
  const auto q = e.find("question");
  if (q == e.end()) fail(where, ": field 'question': missing (expected a string)");
  if (!q->is_string()) fail(where, ": field 'question': expected a string, got ", describe_json(*q));
  const auto sc = e.find("scores");
  if (sc == e.end()) fail(where, ": field 'scores': missing (expected an object of model -> score)");
  if (!sc->is_object()) fail(where, ": field 'scores': expected an object of model -> score, got ", describe_json(*sc));
  Entry out;
  out.question = q->get<std::string>();
  out.split = static_cast<uint8_t>(sf.split);
  std::string stem = base_name(sf.path);
  stem = stem.substr(0, stem.rfind('.'));
  out.id = stem + "." + std::to_string(k);
  for (const auto& [model, v] : sc->items()) {
    if (v.is_null()) {
      out.scores.emplace_back(model, kMissingD);
      continue;
    }
    if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1)
      fail(where, ": field 'scores.", model, "': expected a number in [0, 1] or null, got ", describe_json(v));
    out.scores.emplace_back(model, v.get<double>());
  }
  // Task: the task map of the same split first, then the others (a handful of questions
  // appear under two tasks; the first listing in the same-split file wins).
  const TaskEntry* te = nullptr;
  for (int pass = 0; pass < 2 && !te; ++pass)
    for (const auto& tm : task_maps) {
      if ((pass == 0) != (tm.split == sf.split)) continue;
      const auto it = tm.by_question.find(out.question);
      if (it != tm.by_question.end()) {
        te = &it->second;
        break;
      }
    }
  if (!te) fail(where, ": field 'question': not found in any task map (default_query_*.jsonl)");
  out.task = te->task;
  out.output_tokens = te->output_tokens;
  return out;
}

// The TraceSet of the valid entries: models sorted by name with their prices, one query per entry,
// and the outcomes (costs from the task maps' output-token estimates).
TraceSet assemble_trace_set(const LlmRouterInputs& in, const std::unordered_map<std::string, LlmPrice>& price_of,
                            const std::vector<Entry>& entries, const std::set<std::string>& model_set,
                            ImportReport& report) {
  TraceSet t;
  t.source = "llmrouter:";
  for (const auto& sf : in.score_files) t.source += " " + base_name(sf.path);
  std::vector<std::string> unpriced;
  for (const auto& m : model_set) {  // sorted by name
    t.model_name.push_back(m);
    const auto it = price_of.find(m);
    if (it == price_of.end()) {
      unpriced.push_back(m);
      t.model_provider.push_back(provider_from_name(m));
      t.price_in_per_mtok.push_back(kMissingD);
      t.price_out_per_mtok.push_back(kMissingD);
    } else {
      std::string svc = it->second.service;
      for (auto& c : svc) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      t.model_provider.push_back(svc.empty() ? provider_from_name(m) : svc);
      t.price_in_per_mtok.push_back(it->second.in);
      t.price_out_per_mtok.push_back(it->second.out);
    }
  }
  if (!unpriced.empty()) {
    std::string names;
    for (const auto& m : unpriced) names += " " + m;
    report.notes.push_back("models without a price in " + in.price_path + " (costs left missing):" + names);
  }
  for (const auto& e : entries) {
    t.query_id.push_back(e.id);
    t.query_task.push_back(e.task);
    t.query_text.push_back(e.question);
    t.input_tokens.push_back(estimate_tokens(e.question));
    t.split.push_back(e.split);
  }
  t.allocate_outcomes();
  for (std::size_t q = 0; q < entries.size(); ++q) {
    const Entry& e = entries[q];
    for (const auto& [model, score] : e.scores) {
      const auto m = static_cast<std::size_t>(t.model_index(model));
      const std::size_t i = t.at(q, m);
      if (std::isnan(score)) continue;
      t.quality[i] = static_cast<float>(score);
      t.error[i] = kOk;
      t.output_tokens[i] = e.output_tokens;
      const double pin = t.price_in_per_mtok[m], pout = t.price_out_per_mtok[m];
      if (e.output_tokens >= 0)
        t.cost_usd[i] = (static_cast<double>(t.input_tokens[q]) * pin + static_cast<double>(e.output_tokens) * pout) / 1e6;
    }
  }
  return t;
}

}  // namespace

TraceSet import_llmrouter(const std::vector<std::string>& inputs, const ImportOptions& options,
                          ImportReport& report) {
  const auto files = expand_inputs(inputs, {".json", ".jsonl"}, "LLMRouter files (train.json, test.json, "
                                                                 "default_llm.json, default_query_*.jsonl)");
  const LlmRouterInputs in = read_inputs(files, options, report);
  const auto price_of = parse_prices(in.price_path, in.prices);

  // Parse every entry first (each is checked whole, then kept or skipped).
  std::vector<Entry> entries;
  std::set<std::string> model_set;
  for (const auto& sf : in.score_files) {
    const auto lines = top_level_array_lines(sf.text);
    for (std::size_t k = 0; k < sf.data.size(); ++k) {
      ++report.records;
      try {
        Entry out = parse_entry(sf, k, lines, in.task_maps);
        for (const auto& s : out.scores) model_set.insert(s.first);
        entries.push_back(std::move(out));
      } catch (const Error& e) {
        report.bad_record(options, e);
      }
    }
  }
  if (entries.empty()) fail("no valid entries in the LLMRouter input (", report.skipped, " bad entries skipped)");
  return assemble_trace_set(in, price_of, entries, model_set, report);
}

}  // namespace conductor
