// `conductor model embed` and `conductor traces embed`: the BERT sentence encoder
// (llm/sentence_encoder.h) from the command line -- embeddings of texts and of a trace file's queries
// (features.encoder). Its throughput is `conductor bench encoder` (bench/cmd_bench_encoder.cpp). See
// docs/encoder.md.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "artifacts/safetensors.h"
#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/text_input.h"
#include "llm/qwen2.h"
#include "llm/sentence_encoder.h"
#include "policies/query_encoder.h"
#include "traces/store.h"

namespace conductor::cli {
namespace {

using namespace conductor::llm;

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
      const auto more = read_text_lines(*texts_file);
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

}  // namespace
}  // namespace conductor::cli
