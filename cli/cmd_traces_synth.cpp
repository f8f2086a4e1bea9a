// conductor traces synth | fit-latency | catalog: the embedded default world and the provider catalog.
#include <filesystem>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "core/log.h"
#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "traces/catalog.h"
#include "traces/latency_fit.h"
#include "traces/pricing.h"
#include "traces/store.h"
#include "traces/synth.h"

namespace conductor::cli {
namespace {

Catalog catalog_from(const std::string& path) { return path.empty() ? default_catalog() : load_catalog(path); }

void setup_traces_synth(CLI::App& app) {
  CLI::App* traces = group(app, "traces", "Trace files: import, synthesize, inspect");

  // ---- traces synth
  {
    struct Opts {
      std::string out, catalog, config, stats_out;
      int64_t queries = 1000;
      uint64_t seed = 0;
      double test_fraction = 0.2, validation_fraction = 0.1;
      std::vector<std::string> sets;
      bool stats = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* c = traces->add_subcommand(
        "synth", "Generate the embedded default world: every catalog worker on N synthetic queries (HDF5 traces)");
    c->add_option("--out", o->out, "output trace file (.h5), written atomically")->required();
    c->add_option("--queries", o->queries, "number of queries")->capture_default_str();
    c->add_option("--seed", o->seed, "base seed (same seed, same file)")->capture_default_str();
    c->add_option("--catalog", o->catalog, "provider catalog YAML (default: the embedded configs/catalog.yaml)");
    c->add_option("--test-fraction", o->test_fraction, "share of queries in the test split")->capture_default_str();
    c->add_option("--validation-fraction", o->validation_fraction, "share of queries in the validation split")
        ->capture_default_str();
    c->add_option("--config", o->config,
                  "YAML with generator settings (queries, seed, domain_mix, queries_per_second, cue_fidelity, "
                  "fractions); command-line flags given explicitly win");
    c->add_option("--set", o->sets, "override a generator setting: KEY=VALUE (e.g. domain_mix.code=0.5)");
    c->add_flag("--stats", o->stats, "print the world's measured statistics (Markdown) to stdout");
    c->add_option("--stats-out", o->stats_out, "also write the statistics (Markdown) to this file");
    c->callback([o, c]() {
      // Generator settings: defaults < --config file < --set; flags given explicitly win over both.
      ConfigDoc doc = o->config.empty() ? ConfigDoc::empty("<synth defaults>") : ConfigDoc::load_file(o->config);
      doc.apply_overrides(o->sets);
      SynthConfig cfg = SynthConfig::parse(doc.root());
      if (c->count("--queries")) cfg.queries = o->queries;
      if (c->count("--seed")) cfg.seed = o->seed;
      if (c->count("--test-fraction")) cfg.test_fraction = o->test_fraction;
      if (c->count("--validation-fraction")) cfg.validation_fraction = o->validation_fraction;
      if (cfg.queries < 1) fail("--queries: expected >= 1, got ", cfg.queries);
      if (!(cfg.test_fraction >= 0 && cfg.validation_fraction >= 0 && cfg.test_fraction + cfg.validation_fraction <= 1))
        fail("--test-fraction ", cfg.test_fraction, " and --validation-fraction ", cfg.validation_fraction,
             ": expected shares >= 0 with a sum <= 1");
      const Catalog catalog = catalog_from(o->catalog);
      SynthLatents latents;
      const TraceSet ts = synthesize(cfg, catalog, &latents);
      write_traces(ts, o->out);
      log_info("wrote ", o->out, ": ", ts.n_queries(), " queries x ", ts.n_models(), " workers (seed ", cfg.seed,
               ", catalog ", catalog.name, ", prices of ", catalog.pricing_snapshot, ")");
      if (o->stats || !o->stats_out.empty()) {
        const std::string stats = format_synth_statistics(ts, latents);
        if (o->stats) std::cout << stats;
        if (!o->stats_out.empty()) write_file_atomic(o->stats_out, stats);
      }
    });
  }

  // ---- traces fit-latency
  {
    struct Opts {
      std::string input, yaml_out;
      bool yaml = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* c = traces->add_subcommand(
        "fit-latency", "Fit lognormal TTFT and decode-throughput shapes to llmperf per-request records");
    c->add_option("--input", o->input, "a directory of llmperf individual/*.json files, or one file")->required();
    c->add_flag("--yaml", o->yaml, "print YAML (the catalog's latency blocks) instead of the table");
    c->add_option("--yaml-out", o->yaml_out, "also write the YAML to this file");
    c->callback([o]() {
      std::vector<LatencyFit> fits;
      std::error_code ec;
      if (std::filesystem::is_directory(o->input, ec)) fits = fit_llmperf_dir(o->input);
      else fits.push_back(fit_llmperf_file(o->input));
      const std::string yaml = format_latency_yaml(fits, o->input);
      std::cout << (o->yaml ? yaml : format_latency_table(fits));
      if (!o->yaml_out.empty()) write_file_atomic(o->yaml_out, yaml);
    });
  }

  // ---- traces catalog
  {
    struct Opts {
      std::string catalog, prices;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* c = traces->add_subcommand(
        "catalog", "Validate and print a provider catalog; with --prices, check every price against the table");
    c->add_option("--catalog", o->catalog, "catalog YAML (default: the embedded configs/catalog.yaml)");
    c->add_option("--prices", o->prices,
                  "LiteLLM price table JSON (e.g. ../shared/data/pricing/"
                  "model_prices_and_context_window.2026-07-24.json)");
    c->callback([o]() {
      const Catalog cat = catalog_from(o->catalog);
      std::printf("catalog %s: %zu workers, prices of %s\n", cat.name.c_str(), cat.workers.size(),
                  cat.pricing_snapshot.c_str());
      std::printf("%-22s %-10s %-10s %9s %9s %9s %9s %8s %8s\n", "worker", "provider", "class", "$in/Mtok",
                  "$out/Mtok", "ttft_p50", "tok/s_p50", "down", "fail");
      for (const auto& w : cat.workers)
        std::printf("%-22s %-10s %-10s %9.3f %9.3f %9.3f %9.1f %8.4f %8.4f\n", w.id.c_str(), w.provider.c_str(),
                    w.size_class.c_str(), w.price_in_per_mtok, w.price_out_per_mtok, w.latency.median_ttft_s(),
                    w.latency.median_throughput(), w.availability.outage_fraction(),
                    w.availability.server_error_rate + w.availability.rate_limit_rate);
      if (!o->prices.empty()) {
        const PriceTable table = PriceTable::load(o->prices);
        const auto bad = check_catalog_prices(cat, table);
        for (const auto& b : bad) std::printf("MISMATCH %s: %s\n", b.worker.c_str(), b.message.c_str());
        if (!bad.empty()) fail(bad.size(), " price(s) in ", cat.name, " differ from ", o->prices);
        std::printf("all %zu prices match %s\n", cat.workers.size(), o->prices.c_str());
      }
    });
  }
}

}  // namespace

CONDUCTOR_COMMAND(setup_traces_synth);

}  // namespace conductor::cli
