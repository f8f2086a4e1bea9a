// `conductor bench tokenizer`: encode throughput of the byte-level BPE tokenizer on one thread
// (docs/tokenizer.md).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/commands.h"
#include "core/error.h"
#include "core/text_input.h"
#include "tokenizer/bpe_tokenizer.h"

namespace conductor::bench {
namespace {

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
    docs = read_jsonl_texts(input);
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

}  // namespace

void add_bench_tokenizer(CLI::App& bench) {
  struct Opts {
    std::string tokenizer, input;
    int repeats = 3;
    bool pcre2 = false;
    bool no_cache = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = bench.add_subcommand("tokenizer", "Tokenizer encode throughput on one thread (MB/s, tokens/s)");
  c->add_option("--tokenizer", o->tokenizer, "HF tokenizer.json")->required();
  c->add_option("--input", o->input, "text file (one document per line) or JSONL {\"text\": ...}; default: built-in English");
  c->add_option("--repeats", o->repeats, "timed passes (the first starts with an empty cache)")->check(CLI::Range(1, 100));
  c->add_flag("--pcre2", o->pcre2, "split with PCRE2 even when the dedicated Qwen2 scanner applies");
  c->add_flag("--no-cache", o->no_cache, "merge every piece from scratch (no per-piece result cache)");
  c->callback([o] { run_bench(o->tokenizer, o->input, o->repeats, o->pcre2, o->no_cache); });
}

}  // namespace conductor::bench
