// conductor tokenizer encode | train, and conductor bench tokenizer (docs/tokenizer.md).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/bpe_trainer.h"

namespace conductor::cli {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Calls on_text(text, line_number) for each line {"text": "..."} of a JSONL file. Other fields are
// allowed (and not read). A blank or malformed line is an error naming the file and the line.
template <class F>
void for_each_jsonl_text(const std::string& path, F&& on_text) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open for reading");
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string where = path + ":" + std::to_string(number);
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      fail(where, ": blank line (expected {\"text\": \"...\"}; the output keeps one line per input line)");
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      fail(where, ": invalid JSON (", e.what(), ")");
    }
    if (!j.is_object()) fail(where, ": expected an object {\"text\": \"...\"}, found ", j.type_name());
    auto it = j.find("text");
    if (it == j.end()) fail(where, ": no \"text\" field");
    if (!it->is_string()) fail(where, ": \"text\" must be a string, found ", it->type_name());
    on_text(it->get_ref<const std::string&>(), number);
  }
  if (in.bad()) fail(path, ": read error");
}

// The texts of a .jsonl file ({"text": ...} lines), or the whole of any other file as one text.
std::vector<std::string> read_texts(const std::string& path) {
  std::vector<std::string> texts;
  if (ends_with(path, ".jsonl")) {
    for_each_jsonl_text(path, [&](const std::string& t, size_t) { texts.push_back(t); });
  } else {
    texts.push_back(read_file(path));
  }
  return texts;
}

void run_encode(const std::string& tokenizer_path, const std::string& input, const std::string& out) {
  const auto t0 = std::chrono::steady_clock::now();
  const BpeTokenizer tok = BpeTokenizer::load(tokenizer_path);
  AtomicOutput output(out);
  std::ofstream os(output.temp_path(), std::ios::binary);
  if (!os) fail(out, ": cannot open for writing");
  size_t lines = 0, tokens = 0, bytes = 0;
  std::string buf;
  for_each_jsonl_text(input, [&](const std::string& text, size_t number) {
    std::vector<int32_t> ids;
    try {
      ids = tok.encode(text);
    } catch (const Error& e) {
      fail(input, ":", number, ": ", e.what());
    }
    buf.assign("{\"ids\":[");
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) buf.push_back(',');
      buf += std::to_string(ids[i]);
    }
    buf += "]}\n";
    os << buf;
    ++lines;
    tokens += ids.size();
    bytes += text.size();
  });
  os.close();
  if (!os) fail(out, ": write error");
  output.commit();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s: %zu lines, %zu tokens from %zu bytes of text (%.2f s including loading the tokenizer)\n",
              out.c_str(), lines, tokens, bytes, s);
}

void run_train(const std::string& input, int vocab_size, long min_frequency, const std::string& out) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<std::string> texts = read_texts(input);
  BpeTrainOptions options;
  options.vocab_size = vocab_size;
  options.min_frequency = min_frequency;
  BpeTrainResult r = train_bpe(texts, options);
  // Build it once: the same checks as loading a file, before anything is written.
  const BpeTokenizer tok(std::move(r.spec), out);
  tok.write_json(out);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s: vocab_size %d (256 bytes + %d merges + %zu special tokens) from %lld pieces (%lld distinct), %.2f s\n",
              out.c_str(), tok.vocab_size(), r.merges, options.special_tokens.size(), static_cast<long long>(r.pieces),
              static_cast<long long>(r.unique_pieces), s);
  if (!r.reached_vocab_size)
    std::printf("note: stopped before --vocab-size %d: no pair of symbols occurs %ld times or more any longer\n",
                vocab_size, min_frequency);
}

// English prose for the benchmark when no --input is given (written for this benchmark).
constexpr const char* kBuiltinEnglish = R"(The conductor is a small policy that decides, for each incoming question, which language models to ask, whether a doubtful answer deserves a second opinion, and when to stop and reply. It weighs the quality of an answer against the money and the seconds that answer costs, and it learns that trade-off from logged traces rather than from hand-written rules.
Most questions are easy. A short factual query about a capital city, a unit conversion or the meaning of a common word is answered correctly by almost every model, so the cheapest one is the right choice. Harder questions, such as multi-step arithmetic, a proof sketch, or a program that must pass hidden tests, separate the models: the expensive ones are right more often, but not always, and they are slower.
When two cheap models agree, the agreement is itself evidence. When they disagree, it may be worth paying for a third opinion or escalating to a stronger model. The policy sees how many calls it has made, what each cost, how long each took, and whether the answers agreed; it does not see the true answer, which is only revealed when the episode ends and the reward is computed.
Training runs thousands of such episodes against a simulated world. Providers go down, time out, slow down or change their prices, because real providers do all of these things. A policy that never saw an outage during training will keep calling a provider that has stopped answering; one that did will learn to route around it.
Evaluation replays held-out questions with full information: because the traces record every model's answer to every question, the evaluator can say exactly what any policy would have scored, and compare it with fixed strategies, with an oracle that always knows the best model, and with published routers.
We measured each part on an ordinary laptop-class machine with two cores and no graphics card. The numbers in the tables are medians of several runs, and the commands that produced them are printed next to them, so that anyone can check them on their own hardware. Where a figure depends on the load of the machine, we say so.
)";

void run_bench(const std::string& tokenizer_path, const std::string& input, int repeats, bool pcre2, bool no_cache) {
  BpeOptions options;
  options.force_pcre2 = pcre2;
  if (no_cache) options.cache_entries = 0;
  const auto l0 = std::chrono::steady_clock::now();
  const BpeTokenizer tok = BpeTokenizer::load(tokenizer_path, options);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - l0).count();

  std::vector<std::string> docs;
  std::string source;
  if (input.empty()) {
    const std::string para = kBuiltinEnglish;
    std::string text;
    while (text.size() < (4u << 20)) text += para;
    // One document per paragraph line, as a caller encoding prompts would.
    size_t start = 0;
    while (start < text.size()) {
      const size_t nl = text.find('\n', start);
      const size_t end = nl == std::string::npos ? text.size() : nl + 1;
      docs.push_back(text.substr(start, end - start));
      start = end;
    }
    source = "built-in English prose (" + std::to_string(para.size()) + " bytes repeated to 4 MiB; --input for real text)";
  } else {
    docs = read_texts(input);
    source = input;
    if (docs.size() == 1) {  // a plain file: one document per line, as above
      const std::string all = std::move(docs[0]);
      docs.clear();
      size_t start = 0;
      while (start < all.size()) {
        const size_t nl = all.find('\n', start);
        const size_t end = nl == std::string::npos ? all.size() : nl + 1;
        docs.push_back(all.substr(start, end - start));
        start = end;
      }
    }
  }
  size_t bytes = 0;
  for (const auto& d : docs) bytes += d.size();
  if (bytes == 0) fail("bench tokenizer: ", source, " holds no text");

  std::printf("tokenizer: %s (vocab_size %d, split engine %s, piece cache %s), loaded in %.2f s\n",
              tokenizer_path.c_str(), tok.vocab_size(), tok.split_engine().c_str(), no_cache ? "off" : "on", load_s);
  std::printf("input: %s: %zu documents, %.2f MB\n", source.c_str(), docs.size(), bytes / 1e6);
  std::printf("%-8s %10s %12s %14s\n", "pass", "seconds", "MB/s", "tokens/s");
  double best = 1e300;
  size_t tokens = 0;
  for (int r = 0; r < repeats; ++r) {
    size_t n = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& d : docs) n += tok.encode(d).size();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    tokens = n;
    best = std::min(best, s);
    std::printf("%-8s %10.3f %12.2f %14.0f\n", r == 0 ? "1 (cold)" : std::to_string(r + 1).c_str(), s, bytes / 1e6 / s,
                n / s);
  }
  std::printf("best: %.2f MB/s, %.0f tokens/s on one thread (%zu tokens, %.2f bytes/token)\n", bytes / 1e6 / best,
              tokens / best, tokens, double(bytes) / tokens);
}

void setup_tokenizer(CLI::App& app) {
  CLI::App* group_app = group(app, "tokenizer", "Byte-level BPE tokenizer of the Qwen2 kind (docs/tokenizer.md)");
  {
    struct Opts {
      std::string tokenizer, input, out;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* c = group_app->add_subcommand(
        "encode", "Token ids of JSONL texts: {\"text\": ...} lines in, {\"ids\": [...]} lines out (no special tokens added)");
    c->add_option("--tokenizer", o->tokenizer, "HF tokenizer.json (Qwen2 kind)")->required();
    c->add_option("--input", o->input, "JSONL, one {\"text\": \"...\"} per line")->required();
    c->add_option("--out", o->out, "JSONL, one {\"ids\": [...]} per input line, written atomically")->required();
    c->callback([o] { run_encode(o->tokenizer, o->input, o->out); });
  }
  {
    struct Opts {
      std::string input, out;
      int vocab_size = 0;
      long min_frequency = 2;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* c = group_app->add_subcommand(
        "train", "Train a small byte-level BPE of the Qwen2 kind (NFC, Qwen2 regex, 256 bytes, Qwen's 3 special tokens)");
    c->add_option("--input", o->input, "a text file (one text), or JSONL with {\"text\": ...} lines")->required();
    c->add_option("--vocab-size", o->vocab_size, "total ids: 256 bytes + merges + 3 special tokens")
        ->required()
        ->check(CLI::Range(259, 1 << 24));
    c->add_option("--min-frequency", o->min_frequency, "merge only pairs seen at least this often (default 2)")
        ->check(CLI::Range(1L, 1L << 40));
    c->add_option("--out", o->out, "tokenizer.json to write (atomically)")->required();
    c->callback([o] { run_train(o->input, o->vocab_size, o->min_frequency, o->out); });
  }
}

void setup_bench_tokenizer(CLI::App& app) {
  CLI::App* bench = group(app, "bench", "Benchmarks");
  struct Opts {
    std::string tokenizer, input;
    int repeats = 3;
    bool pcre2 = false;
    bool no_cache = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = bench->add_subcommand("tokenizer", "Tokenizer encode throughput on one thread (MB/s, tokens/s)");
  c->add_option("--tokenizer", o->tokenizer, "HF tokenizer.json")->required();
  c->add_option("--input", o->input, "text file (one document per line) or JSONL {\"text\": ...}; default: built-in English");
  c->add_option("--repeats", o->repeats, "timed passes (the first starts with an empty cache)")->check(CLI::Range(1, 100));
  c->add_flag("--pcre2", o->pcre2, "split with PCRE2 even when the dedicated Qwen2 scanner applies");
  c->add_flag("--no-cache", o->no_cache, "merge every piece from scratch (no per-piece result cache)");
  c->callback([o] { run_bench(o->tokenizer, o->input, o->repeats, o->pcre2, o->no_cache); });
}

}  // namespace
CONDUCTOR_COMMAND(setup_tokenizer);
CONDUCTOR_COMMAND(setup_bench_tokenizer);
}  // namespace conductor::cli
