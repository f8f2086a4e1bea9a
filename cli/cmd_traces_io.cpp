// conductor traces import | info: importers (RouterBench, LLMRouter, JSONL logs) and summaries.
#include <iostream>
#include <memory>
#include <optional>

#include "cli/command.h"
#include "core/log.h"
#include "core/error.h"
#include "traces/import_common.h"
#include "traces/import_jsonl.h"
#include "traces/import_llmrouter.h"
#include "traces/import_routerbench.h"
#include "traces/info.h"
#include "traces/pricing.h"
#include "traces/store.h"

namespace conductor::cli {
namespace {

void run_import(const std::string& format, const std::vector<std::string>& inputs, const std::string& out,
                bool skip_bad, const std::string& pricing) {
  ImportOptions options;
  options.skip_bad = skip_bad;
  ImportReport report;
  // Load the price table first: a bad --pricing path should fail before a long import.
  std::optional<PriceTable> prices;
  if (!pricing.empty()) prices = PriceTable::load(pricing);
  TraceSet t;
  if (format == "routerbench") t = import_routerbench(inputs, options, report);
  else if (format == "llmrouter") t = import_llmrouter(inputs, options, report);
  else if (format == "jsonl") t = import_jsonl(inputs, options, report);
  else fail("unknown --format '", format, "' (expected routerbench, llmrouter or jsonl)");

  if (prices) {
    const auto unpriced = apply_prices(t, *prices);
    if (!unpriced.empty()) {
      std::string names;
      for (const auto& m : unpriced) names += " " + m;
      report.notes.push_back("not priced in " + pricing + " (prices left unknown):" + names);
    }
  }
  write_traces(t, out);  // validates, then writes atomically

  for (const auto& note : report.notes) log_info("note: ", note);
  if (report.skipped > 0) {
    std::string first;
    for (const auto& m : report.skipped_examples) first += "\n  " + m;
    log_warn("skipped ", report.skipped, " bad record", report.skipped == 1 ? "" : "s", " of ", report.records,
             " (--skip-bad); the first:", first);
  }
  const auto train = t.split_indices(Split::kTrain).size(), val = t.split_indices(Split::kValidation).size(),
             test = t.split_indices(Split::kTest).size();
  std::cout << "wrote " << out << ": " << t.n_queries() << " queries x " << t.n_models() << " models (train " << train
            << ", validation " << val << ", test " << test << "), " << t.decisions.size() << " decisions; "
            << report.records << " records read, " << report.skipped << " skipped\n";
}

void setup_traces_io(CLI::App& app) {
  CLI::App* traces = group(app, "traces", "Trace files: import, synthesize, inspect");

  {
    struct Opts {
      std::string format, out, pricing;
      std::vector<std::string> inputs;
      bool skip_bad = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* c = traces->add_subcommand(
        "import", "Convert RouterBench CSVs, LLMRouter JSON or JSONL production logs into a trace file (docs/importers.md)");
    c->add_option("--format", o->format, "input format")
        ->required()
        ->check(CLI::IsMember({"routerbench", "llmrouter", "jsonl"}));
    c->add_option("--input", o->inputs,
                  "input files or directories (routerbench: *.csv; llmrouter: *.json and *.jsonl; jsonl: *.jsonl)")
        ->required();
    c->add_option("--out", o->out, "output trace file (.h5), written atomically")->required();
    c->add_flag("--skip-bad", o->skip_bad, "skip and count bad records instead of stopping at the first one");
    c->add_option("--pricing", o->pricing,
                  "LiteLLM price table (model_prices_and_context_window.json) for models without a price, "
                  "matched by exact name");
    c->callback([o]() { run_import(o->format, o->inputs, o->out, o->skip_bad, o->pricing); });
  }

  {
    struct Opts {
      std::string file, split;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* c = traces->add_subcommand(
        "info", "Counts, splits and per-model mean quality, cost, latency and missing share of a trace file");
    c->add_option("file", o->file, "trace file (.h5)")->required();
    c->add_option("--split", o->split, "summarize one split: train, validation or test (default: all)");
    c->add_flag("--json", o->json, "print one JSON object instead of a table");
    c->callback([o]() {
      std::optional<Split> split;
      if (!o->split.empty()) split = parse_split(o->split);
      const TraceSet t = read_traces(o->file);
      const TraceSummary s = summarize_traces(t, split);
      if (o->json) std::cout << summary_to_json(s).dump(2) << "\n";
      else std::cout << "file:      " << o->file << "\n" << summary_table(s);
    });
  }
}

}  // namespace

CONDUCTOR_COMMAND(setup_traces_io);

}  // namespace conductor::cli
