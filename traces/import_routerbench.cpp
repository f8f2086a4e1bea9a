#include "traces/import_routerbench.h"

#include <cctype>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "traces/csv.h"
#include "traces/tokens.h"

namespace conductor {
namespace {

const char* const kResponseSuffix = "|model_response";
const char* const kCostSuffix = "|total_cost";
// Columns that are not models. "" is pandas' unnamed index column.
const std::unordered_set<std::string> kFixedColumns = {"", "sample_id", "prompt", "eval_name",
                                                        "oracle_model_to_route_to"};

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp <= 0x10FFFF) {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    fail("escape \\U", std::hex, cp, " is not a Unicode code point");
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string shorten(const std::string& s) { return s.size() > 60 ? s.substr(0, 57) + "..." : s; }

bool split_from_file_name(const std::string& path, uint8_t& split) {
  const std::string name = base_name(path);
  auto ends = [&](const char* suffix) {
    const std::string s = suffix;
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  if (ends("_train.csv")) split = static_cast<uint8_t>(Split::kTrain);
  else if (ends("_validation.csv") || ends("_val.csv")) split = static_cast<uint8_t>(Split::kValidation);
  else if (ends("_test.csv")) split = static_cast<uint8_t>(Split::kTest);
  else return false;
  return true;
}

// One parsed data row, committed to the TraceSet only when all of it is valid.
struct Row {
  std::string sample_id, index, task, text;
  uint8_t split = 0;
  int32_t input_tokens = kMissingI;
  std::vector<float> quality;
  std::vector<double> cost;
  std::vector<int32_t> output_tokens, answer;
  std::vector<uint8_t> error;
  std::string file;
  std::size_t line = 0;
};

struct FileColumns {
  int index = -1, sample_id = -1, prompt = -1, eval_name = -1;
  std::vector<int> quality, response, cost;  // per model, in TraceSet model order
};

}  // namespace

std::vector<std::string> parse_python_string_list(const std::string& literal) {
  std::vector<std::string> out;
  std::size_t i = 0;
  const std::size_t n = literal.size();
  auto skip_ws = [&] {
    while (i < n && std::isspace(static_cast<unsigned char>(literal[i]))) ++i;
  };
  skip_ws();
  if (i >= n || literal[i] != '[') fail("expected a Python list literal of strings such as ['text'], got \"", shorten(literal), "\"");
  ++i;
  skip_ws();
  if (i < n && literal[i] == ']') {
    ++i;
  } else {
    for (;;) {
      skip_ws();
      if (i >= n || (literal[i] != '\'' && literal[i] != '"'))
        fail("expected a quoted string at character ", i + 1, " of the list literal");
      const char quote = literal[i++];
      std::string s;
      for (;;) {
        if (i >= n) fail("unterminated string in the list literal");
        const char c = literal[i++];
        if (c == quote) break;
        if (c != '\\') {
          s += c;
          continue;
        }
        if (i >= n) fail("unterminated escape at the end of the list literal");
        const char e = literal[i++];
        switch (e) {
          case 'n': s += '\n'; break;
          case 't': s += '\t'; break;
          case 'r': s += '\r'; break;
          case '\\': s += '\\'; break;
          case '\'': s += '\''; break;
          case '"': s += '"'; break;
          case 'a': s += '\a'; break;
          case 'b': s += '\b'; break;
          case 'f': s += '\f'; break;
          case 'v': s += '\v'; break;
          case '\n': break;  // line continuation
          case 'x': case 'u': case 'U': {
            const int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int k = 0; k < digits; ++k) {
              const int h = i < n ? hex_value(literal[i]) : -1;
              if (h < 0) fail("bad \\", e, " escape: expected ", digits, " hex digits");
              cp = cp * 16 + static_cast<uint32_t>(h);
              ++i;
            }
            append_utf8(s, cp);
            break;
          }
          default:
            if (e >= '0' && e <= '7') {
              uint32_t cp = static_cast<uint32_t>(e - '0');
              for (int k = 0; k < 2 && i < n && literal[i] >= '0' && literal[i] <= '7'; ++k)
                cp = cp * 8 + static_cast<uint32_t>(literal[i++] - '0');
              append_utf8(s, cp);
            } else {  // Python keeps unknown escapes verbatim
              s += '\\';
              s += e;
            }
        }
      }
      out.push_back(std::move(s));
      skip_ws();
      if (i < n && literal[i] == ',') {
        ++i;
        skip_ws();
        if (i < n && literal[i] == ']') {  // trailing comma
          ++i;
          break;
        }
        continue;
      }
      if (i < n && literal[i] == ']') {
        ++i;
        break;
      }
      fail("expected ',' or ']' at character ", i + 1, " of the list literal");
    }
  }
  skip_ws();
  if (i != n) fail("unexpected text after the closing ']' of the list literal");
  return out;
}

int32_t parse_choice_letter(const std::string& response) {
  std::size_t b = 0, e = response.size();
  while (b < e && std::isspace(static_cast<unsigned char>(response[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(response[e - 1]))) --e;
  if (b < e && response[b] == '(') ++b;
  if (b >= e || response[b] < 'A' || response[b] > 'E') return -1;
  const int32_t letter = response[b] - 'A';
  std::size_t i = b + 1;
  if (i == e) return letter;
  const char c = response[i];
  if (c == ')' || c == '.' || c == ':' || c == ',') return letter;
  if (std::isspace(static_cast<unsigned char>(c))) {
    while (i < e && std::isspace(static_cast<unsigned char>(response[i]))) ++i;
    if (i < e && response[i] == '(') return letter;
  }
  return -1;
}

bool is_multiple_choice_task(const std::string& eval_name) {
  for (const char* prefix : {"arc", "winogrande", "hellaswag", "mmlu"})
    if (eval_name.rfind(prefix, 0) == 0) return true;
  return false;
}

namespace {

// Model columns of one file: every header column that is neither fixed nor "<model>|...". Each
// needs its response and cost columns; a "<model>|..." column without a quality column is an error
// too.
std::vector<std::string> model_columns(const std::string& path, const CsvTable& table) {
  std::vector<std::string> models;
  for (const auto& col : table.header) {
    const auto bar = col.find('|');
    if (bar != std::string::npos) {
      const std::string model = col.substr(0, bar), what = col.substr(bar);
      if (what != kResponseSuffix && what != kCostSuffix)
        fail(path, ":", table.header_line, ": unexpected column '", col, "' (expected '<model>", kResponseSuffix,
             "' or '<model>", kCostSuffix, "')");
      if (table.column(model) < 0)
        fail(path, ":", table.header_line, ": missing column '", model, "' (the quality column of '", col, "')");
      continue;
    }
    if (!kFixedColumns.count(col)) models.push_back(col);
  }
  if (models.empty()) fail(path, ":", table.header_line, ": no model quality columns in the header");
  std::vector<std::string> needed;
  for (const auto& m : models) {
    needed.push_back(m + kResponseSuffix);
    needed.push_back(m + kCostSuffix);
  }
  table.require_columns(needed);
  return models;
}

// The column indices of one file, per model in TraceSet model order. The first file fixes
// t.model_name; every later one must hold the same models (any column order).
FileColumns file_columns(const std::string& path, const CsvTable& table, const std::vector<std::string>& models,
                         const std::string& first_file, TraceSet& t) {
  FileColumns cols;
  cols.index = table.column("");
  cols.sample_id = table.column("sample_id");
  cols.prompt = table.column("prompt");
  cols.eval_name = table.column("eval_name");
  if (t.model_name.empty()) {
    t.model_name = models;
  } else {
    // Every file must hold the same models (any column order).
    for (const auto& m : t.model_name)
      if (table.column(m) < 0)
        fail(path, ":", table.header_line, ": missing column '", m, "' (a model of ", base_name(first_file),
             "; every file must hold the same models)");
    for (const auto& m : models)
      if (t.model_index(m) < 0)
        fail(path, ":", table.header_line, ": column '", m, "' is a model that ", base_name(first_file),
             " does not have (every file must hold the same models)");
  }
  for (const auto& m : t.model_name) {
    cols.quality.push_back(table.column(m));
    cols.response.push_back(table.column(m + kResponseSuffix));
    cols.cost.push_back(table.column(m + kCostSuffix));
  }
  return cols;
}

// One data record of a file as a Row of M models; throws Error (with file:line) when it is invalid.
Row parse_row(const std::string& path, const CsvTable& table, const CsvRecord& rec, const FileColumns& cols,
              uint8_t split, std::size_t M) {
  const std::string where = path + ":" + std::to_string(rec.line);
  if (rec.fields.size() != table.header.size())
    fail(where, ": row has ", rec.fields.size(), " fields, expected ", table.header.size(), " (as in the header)");
  auto field = [&](int c) -> const std::string& { return rec.fields[static_cast<std::size_t>(c)]; };
  auto bad = [&](int c, const std::string& expected) {
    fail(where, ": column '", table.header[static_cast<std::size_t>(c)], "': expected ", expected, ", got \"",
         shorten(field(c)), "\"");
  };
  Row r;
  r.file = path;
  r.line = rec.line;
  r.split = split;
  r.sample_id = field(cols.sample_id);
  if (r.sample_id.empty()) bad(cols.sample_id, "a non-empty sample id");
  if (cols.index >= 0) r.index = field(cols.index);
  r.task = field(cols.eval_name);
  if (r.task.empty()) bad(cols.eval_name, "a task name");
  std::vector<std::string> prompt;
  try {
    prompt = parse_python_string_list(field(cols.prompt));
  } catch (const Error& e) {
    fail(where, ": column 'prompt': ", e.what());
  }
  if (prompt.empty()) bad(cols.prompt, "a non-empty list of prompt strings");
  // A few rows hold the prompt twice (a list of two strings); the logged costs show both were
  // sent, so the text is all elements joined by a line break.
  for (std::size_t k = 0; k < prompt.size(); ++k) r.text += (k ? "\n" : "") + prompt[k];
  r.input_tokens = estimate_tokens(r.text);
  const bool choice = is_multiple_choice_task(r.task);

  r.quality.assign(M, kMissingF);
  r.cost.assign(M, kMissingD);
  r.output_tokens.assign(M, kMissingI);
  r.answer.assign(M, kMissingI);
  r.error.assign(M, kErrorMissing);
  for (std::size_t m = 0; m < M; ++m) {
    const std::string& qcell = field(cols.quality[m]);
    if (!qcell.empty()) {
      double v = 0;
      if (!parse_double(qcell, v) || v < 0 || v > 1) bad(cols.quality[m], "a quality in [0, 1] or an empty cell");
      r.quality[m] = static_cast<float>(v);
    }
    const std::string& ccell = field(cols.cost[m]);
    if (!ccell.empty()) {
      double v = 0;
      if (!parse_double(ccell, v) || v < 0) bad(cols.cost[m], "a non-negative cost in USD or an empty cell");
      r.cost[m] = v;
    }
    const std::string& rcell = field(cols.response[m]);
    if (!rcell.empty()) {
      std::vector<std::string> parts;
      try {
        parts = parse_python_string_list(rcell);
      } catch (const Error& e) {
        fail(where, ": column '", table.header[static_cast<std::size_t>(cols.response[m])], "': ", e.what());
      }
      std::string text;
      for (std::size_t k = 0; k < parts.size(); ++k) text += (k ? "\n" : "") + parts[k];
      r.error[m] = kOk;  // a logged response means the call succeeded
      r.output_tokens[m] = estimate_tokens(text);
      r.answer[m] = choice ? parse_choice_letter(text) : kMissingI;
    }
  }
  return r;
}

// Fills t (whose model_name is set) from the valid rows: source, providers, unknown prices, query
// ids and columns, and the outcome matrices.
void assemble_trace_set(TraceSet& t, const std::vector<Row>& rows, const std::string& source,
                        ImportReport& report) {
  // Query ids: the sample id; a few sample ids occur twice in the RouterDC re-split, and those
  // rows get "#<pandas index>" appended (still stable), or "@<file>:<line>" without an index.
  std::unordered_map<std::string, std::size_t> id_count;
  for (const auto& r : rows) ++id_count[r.sample_id];
  const std::size_t N = rows.size(), M = t.model_name.size();
  t.source = source;
  for (const auto& m : t.model_name) {
    t.model_provider.push_back(provider_from_name(m));
    t.price_in_per_mtok.push_back(kMissingD);
    t.price_out_per_mtok.push_back(kMissingD);
  }
  std::unordered_set<std::string> ids;
  std::size_t renamed = 0;
  for (const auto& r : rows) {
    std::string id = r.sample_id;
    if (id_count[r.sample_id] > 1) {
      id += r.index.empty() ? "@" + base_name(r.file) + ":" + std::to_string(r.line) : "#" + r.index;
      ++renamed;
    }
    if (!ids.insert(id).second) fail(r.file, ":", r.line, ": duplicate query id '", id, "'");
    t.query_id.push_back(id);
    t.query_task.push_back(r.task);
    t.query_text.push_back(r.text);
    t.input_tokens.push_back(r.input_tokens);
    t.split.push_back(r.split);
  }
  if (renamed)
    report.notes.push_back(std::to_string(renamed) + " rows share a sample_id with another row; their query ids carry "
                           "'#<index column>' to stay unique");
  t.allocate_outcomes();
  for (std::size_t q = 0; q < N; ++q) {
    const Row& r = rows[q];
    for (std::size_t m = 0; m < M; ++m) {
      const std::size_t i = t.at(q, m);
      t.quality[i] = r.quality[m];
      t.cost_usd[i] = r.cost[m];
      t.output_tokens[i] = r.output_tokens[m];
      t.answer[i] = r.answer[m];
      t.error[i] = r.error[m];
      // latency_s stays NaN: RouterBench does not log latency.
    }
  }
}

}  // namespace

TraceSet import_routerbench(const std::vector<std::string>& inputs, const ImportOptions& options,
                            ImportReport& report) {
  const auto files = expand_inputs(inputs, {".csv"}, "RouterBench CSV files");
  TraceSet t;
  std::vector<Row> rows;
  std::string source = "routerbench:";

  for (const auto& path : files) {
    uint8_t split = 0;
    if (!split_from_file_name(path, split))
      fail(path, ": cannot tell the split from the file name (expected a name ending in _train.csv, "
                 "_validation.csv or _test.csv)");
    source += " " + base_name(path);
    const CsvTable table = read_csv(path);
    table.require_columns({"sample_id", "prompt", "eval_name"});
    const std::vector<std::string> models = model_columns(path, table);
    const FileColumns cols = file_columns(path, table, models, files.front(), t);

    const std::size_t M = t.model_name.size();
    for (const auto& rec : table.rows) {
      ++report.records;
      try {
        rows.push_back(parse_row(path, table, rec, cols, split, M));
      } catch (const Error& e) {
        report.bad_record(options, e);
      }
    }
  }
  if (rows.empty()) fail("no valid rows in the RouterBench input (", report.skipped, " bad rows skipped)");
  assemble_trace_set(t, rows, source, report);
  return t;
}

}  // namespace conductor
