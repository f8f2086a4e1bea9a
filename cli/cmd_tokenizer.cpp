// conductor tokenizer encode | train (docs/tokenizer.md); its throughput is `conductor bench tokenizer`
// (bench/cmd_bench_tokenizer.cpp).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/text_input.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/bpe_trainer.h"

namespace conductor::cli {
namespace {

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
  const std::vector<std::string> texts = read_jsonl_texts(input);
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

}  // namespace
CONDUCTOR_COMMAND(setup_tokenizer);
}  // namespace conductor::cli
