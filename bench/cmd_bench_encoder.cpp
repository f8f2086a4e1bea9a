// `conductor bench encoder`: sentence-encoder throughput (llm/sentence_encoder.h) by thread count,
// query length and batch size (docs/encoder.md).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "bench/commands.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/text_input.h"
#include "llm/sentence_encoder.h"

namespace conductor::bench {
namespace {

using namespace conductor::llm;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Typical routing queries (short instructions and questions), the bench's default "typical" set.
const std::vector<std::string>& typical_queries() {
  static const std::vector<std::string> q = {
      "What is the capital of Australia?",
      "Explain the difference between a process and a thread in simple terms.",
      "Write a Python function that returns the n-th Fibonacci number using memoization.",
      "Summarize the causes of the French Revolution in three bullet points.",
      "Solve for x: 3x + 7 = 22. Show your steps.",
      "Translate 'Where is the train station?' into German and Spanish.",
      "Is it safe to take ibuprofen and paracetamol together? Answer briefly.",
      "Give me a SQL query that lists the top 5 customers by total order value.",
      "Why is the sky blue? Explain like I'm ten.",
      "Draft a polite email asking my manager for a day off next Friday.",
      "Which is larger, 9.11 or 9.9? Explain.",
      "What are the main differences between TCP and UDP?",
      "Write a haiku about autumn rain in the city.",
      "How many prime numbers are there between 1 and 50? List them.",
      "Classify the sentiment of this review: 'The battery died after two days, very disappointed.'",
      "Prove that the square root of 2 is irrational.",
  };
  return q;
}

struct BenchRow {
  std::string queries;
  int threads = 0;
  int64_t batch = 0;
  double tokens = 0, queries_per_s = 0, ms_per_batch = 0, cpu_ms_per_query = 0;
};

}  // namespace

void add_bench_encoder(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("encoder", "Sentence-encoder throughput: queries/s by thread count, query length and batch size");
  auto dir = std::make_shared<std::string>();
  auto threads = std::make_shared<std::vector<int>>(std::vector<int>{1, 2});
  auto batches = std::make_shared<std::vector<int64_t>>(std::vector<int64_t>{1, 32});
  auto seconds = std::make_shared<double>(3.0);
  auto texts_file = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("--model", *dir, "sentence-transformers directory")->required();
  cmd->add_option("--threads", *threads, "torch thread counts to measure (default 1 2)")->check(CLI::Range(1, 1024));
  cmd->add_option("--batch-sizes", *batches, "Batch sizes to measure (default 1 32)")->check(CLI::Range(int64_t{1}, int64_t{4096}));
  cmd->add_option("--seconds", *seconds, "Time per measurement, after one warm-up pass (default 3)")->check(CLI::Range(0.1, 3600.0));
  cmd->add_option("--texts", *texts_file, "The 'typical' queries from this file (one a line, or .jsonl) instead of the built-in 16");
  cmd->add_flag("--json", *as_json, "JSON lines instead of the table");
  cmd->callback([=] {
    SentenceEncoder enc = SentenceEncoder::load(*dir);
    const int64_t L = enc.info().max_seq_length;
    std::vector<std::pair<std::string, std::vector<std::string>>> sets;
    sets.emplace_back("typical", texts_file->empty() ? typical_queries() : read_text_lines(*texts_file));
    if (sets[0].second.empty()) fail("bench encoder: --texts ", *texts_file, " holds no text");
    // Long queries: enough words to fill max_seq_length after truncation.
    std::vector<std::string> longq;
    for (std::size_t i = 0; i < typical_queries().size(); ++i) {
      std::string s;
      for (std::size_t k = 0; static_cast<int64_t>(enc.tokenize(s).size()) < L; ++k)
        s += typical_queries()[(i + k) % typical_queries().size()] + " ";
      longq.push_back(s);
    }
    sets.emplace_back(std::to_string(L) + "-token", longq);

    std::vector<BenchRow> rows;
    for (const auto& [name, texts] : sets) {
      double tokens = 0;
      for (const auto& t : texts) tokens += static_cast<double>(enc.tokenize(t).size());
      tokens /= static_cast<double>(texts.size());
      for (int th : *threads) {
        torch::set_num_threads(th);
        for (int64_t b : *batches) {
          // Batches of b queries cycling through the set; tokenization included (it is part of a request).
          std::vector<std::vector<std::string>> work;
          const std::size_t ub = static_cast<std::size_t>(b), nb = (texts.size() + ub - 1) / ub;
          for (std::size_t j = 0; j < nb; ++j) {
            std::vector<std::string> batch;
            for (std::size_t k = 0; k < ub; ++k) batch.push_back(texts[(j * ub + k) % texts.size()]);
            work.push_back(std::move(batch));
          }
          for (const auto& w : work) enc.encode(w, b);  // warm-up
          int64_t done = 0, calls = 0;
          const std::clock_t c0 = std::clock();  // CPU time of every thread of the process
          const auto t0 = std::chrono::steady_clock::now();
          while (seconds_since(t0) < *seconds) {
            const auto& w = work[static_cast<std::size_t>(calls) % work.size()];
            enc.encode(w, b);
            done += static_cast<int64_t>(w.size());
            ++calls;
          }
          const double secs = seconds_since(t0);
          const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
          rows.push_back({name, th, b, tokens, static_cast<double>(done) / secs, 1000.0 * secs / static_cast<double>(calls),
                          1000.0 * cpu / static_cast<double>(done)});
        }
      }
    }
    const BertConfig& c = enc.config();
    if (*as_json) {
      for (const auto& r : rows)
        std::printf("%s\n", json({{"model", *dir}, {"queries", r.queries}, {"threads", r.threads}, {"batch", r.batch},
                                   {"tokens_per_query", r.tokens}, {"queries_per_s", r.queries_per_s},
                                   {"ms_per_batch", r.ms_per_batch}, {"cpu_ms_per_query", r.cpu_ms_per_query}})
                                .dump()
                                .c_str());
      return;
    }
    std::printf("encoder %s: BERT %lld layers, hidden %lld, %lld heads, %.1fM parameters, max_seq_length %lld, f32 CPU\n",
                dir->c_str(), (long long)c.num_hidden_layers, (long long)c.hidden_size, (long long)c.num_attention_heads,
                static_cast<double>(c.num_parameters()) / 1e6, (long long)L);
    std::printf("%-12s %8s %7s %14s %12s %12s %14s\n", "queries", "threads", "batch", "tokens/query", "queries/s",
                "ms/batch", "CPU ms/query");
    for (const auto& r : rows)
      std::printf("%-12s %8d %7lld %14.1f %12.1f %12.2f %14.2f\n", r.queries.c_str(), r.threads, (long long)r.batch,
                  r.tokens, r.queries_per_s, r.ms_per_batch, r.cpu_ms_per_query);
  });
}

}  // namespace conductor::bench
