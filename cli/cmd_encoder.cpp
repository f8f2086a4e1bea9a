// `conductor model embed`, `conductor traces embed` and `conductor bench encoder`: the BERT sentence
// encoder (llm/sentence_encoder.h) from the command line -- embeddings of texts and of a trace file's
// queries (features.encoder), and its throughput. See docs/encoder.md.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <thread>

#include "artifacts/safetensors.h"
#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"
#include "llm/qwen2.h"
#include "llm/sentence_encoder.h"
#include "policies/query_encoder.h"
#include "traces/store.h"

namespace conductor::cli {
namespace {

using namespace conductor::llm;

// --texts FILE: one text a line; a .jsonl file holds one JSON string or {"text": ...} a line.
std::vector<std::string> read_texts(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("--texts ", path, ": cannot open");
  const bool jsonl = path.size() >= 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
  std::vector<std::string> texts;
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!jsonl) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      texts.push_back(line);
      continue;
    }
    if (line.empty()) continue;
    const json j = parse_json(line, path + " line " + std::to_string(n));
    if (j.is_string()) {
      texts.push_back(j.get<std::string>());
    } else if (j.is_object() && j.contains("text") && j.at("text").is_string()) {
      texts.push_back(j.at("text").get<std::string>());
    } else {
      fail(path, " line ", n, ": expected a JSON string or an object with a string \"text\"");
    }
  }
  return texts;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void setup_model_embed(CLI::App& app) {
  auto* model = group(app, "model", "The Qwen2-family model: memory arithmetic, logits, random checkpoints");
  auto* cmd = model->add_subcommand("embed", "Sentence embeddings of texts with a sentence-transformers BERT directory");
  auto dir = std::make_shared<std::string>();
  auto texts = std::make_shared<std::vector<std::string>>();
  auto texts_file = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto batch = std::make_shared<int64_t>(32);
  auto threads = std::make_shared<int>(0);
  auto device = std::make_shared<std::string>("cpu");
  auto show_tokens = std::make_shared<bool>(false);
  cmd->add_option("--model", *dir, "sentence-transformers directory (e.g. from scripts/fetch-encoder.sh)")->required();
  cmd->add_option("--text", *texts, "A text to embed (repeatable)");
  cmd->add_option("--texts", *texts_file, "File of texts: one a line, or .jsonl (a JSON string or {\"text\": ...} a line)");
  cmd->add_option("--out", *out, "Write F32 'embeddings' [N, dim] to this .safetensors file instead of JSON lines");
  cmd->add_option("--batch-size", *batch, "Texts per forward (default 32)")->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--threads", *threads, "torch threads (default: torch's default)")->check(CLI::Range(0, 1024));
  cmd->add_option("--device", *device, "cpu (default) or cuda[:N]");
  cmd->add_flag("--tokens", *show_tokens, "Also print each text's token ids");
  cmd->callback([=] {
    std::vector<std::string> all = *texts;
    if (!texts_file->empty()) {
      const auto more = read_texts(*texts_file);
      all.insert(all.end(), more.begin(), more.end());
    }
    if (all.empty()) fail("model embed: give --text TEXT (repeatable) or --texts FILE");
    if (*threads > 0) torch::set_num_threads(*threads);
    SentenceEncoder enc = SentenceEncoder::load(*dir, parse_device(*device));
    const auto t0 = std::chrono::steady_clock::now();
    const torch::Tensor e = enc.encode(all, *batch);
    const double secs = seconds_since(t0);
    if (!out->empty()) {
      safetensors::File f;
      f.metadata["model"] = *dir;
      f.metadata["pooling"] = pooling_mode_name(enc.info().pooling[0]);
      f.metadata["normalized"] = enc.info().normalize ? "true" : "false";
      f.tensors["embeddings"] =
          safetensors::Tensor::from_f32({e.size(0), e.size(1)}, e.data_ptr<float>(), static_cast<std::size_t>(e.numel()));
      safetensors::write_file(*out, f);
      std::printf("wrote %s: embeddings [%lld, %lld] in %.3f s\n", out->c_str(), (long long)e.size(0), (long long)e.size(1),
                  secs);
      return;
    }
    for (int64_t i = 0; i < e.size(0); ++i) {
      const float* p = e[i].data_ptr<float>();
      json row = {{"index", i}, {"embedding", std::vector<float>(p, p + e.size(1))}};
      if (*show_tokens) row["tokens"] = enc.tokenize(all[static_cast<std::size_t>(i)]);
      std::printf("%s\n", row.dump().c_str());
    }
  });
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

void setup_bench_encoder(CLI::App& app) {
  auto* bench = group(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand("encoder", "Sentence-encoder throughput: queries/s by thread count, query length and batch size");
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
    sets.emplace_back("typical", texts_file->empty() ? typical_queries() : read_texts(*texts_file));
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

void setup_traces_embed(CLI::App& app) {
  CLI::App* traces = group(app, "traces", "Trace files: import, synthesize, inspect");
  auto* cmd = traces->add_subcommand(
      "embed", "Add the sentence embedding of every query (/queries/embedding, with the encoder's sha256) to a trace file");
  auto dir = std::make_shared<std::string>();
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto batch = std::make_shared<int64_t>(32);
  auto threads = std::make_shared<int>(0);
  cmd->add_option("--model", *dir, "sentence-transformers directory (e.g. from scripts/fetch-encoder.sh)")->required();
  cmd->add_option("IN", *in, "Trace file to read (needs /queries/text)")->required();
  cmd->add_option("OUT", *out, "Trace file to write (atomically; may be IN)")->required();
  cmd->add_option("--batch-size", *batch, "Texts per forward (default 32)")->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  cmd->add_option("--threads", *threads, "torch threads (default: torch's default)")->check(CLI::Range(0, 1024));
  cmd->callback([=] {
    if (*threads > 0) torch::set_num_threads(*threads);
    TraceSet t = read_traces(*in);
    const json r = embed_trace_queries(t, *dir, *batch);
    write_traces(t, *out);  // validates, then writes atomically
    std::printf("wrote %s: /queries/embedding [%zu x %d] of %s (weights sha256 %s) in %.1f s (%.1f queries/s)\n",
                out->c_str(), t.n_queries(), t.embedding_dim, r["name"].get<std::string>().c_str(),
                t.embedding_sha256.c_str(), r["seconds"].get<double>(),
                static_cast<double>(t.n_queries()) / std::max(r["seconds"].get<double>(), 1e-9));
  });
}

CONDUCTOR_COMMAND(setup_model_embed);
CONDUCTOR_COMMAND(setup_traces_embed);
CONDUCTOR_COMMAND(setup_bench_encoder);

}  // namespace
}  // namespace conductor::cli
