// conductor rewards fit: the simulated world's predictors (the routing environment's throughput is
// `conductor bench env`, bench/cmd_bench_env.cpp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"
#include "world/featurizer.h"
#include "world/predictors.h"
#include "traces/store.h"

namespace conductor::cli {
namespace {

// ---------------------------------------------------------------------------------------------
// rewards fit

struct FitOptions {
  std::string traces, report;
  int hash_dim = 256;
  int ngram_max = 2;
  double l2 = 1.0;
  std::string heldout = "test";
  bool text = false;
  int text_buckets = 1 << 18;
  int text_max_iter = 200;
  std::vector<int> text_char = {3, 5};
  std::vector<double> text_l2 = {2.0};
  int text_words = 2;
  std::string text_input = "tfidf";
  std::string encoder;
};

std::string fmt_num(const json& v, int digits = 3) {
  if (v.is_null()) return "n/a";
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v.get<double>();
  return os.str();
}

// The held-out split of --heldout, checked against the traces (not train; train and held-out
// splits non-empty).
Split checked_heldout(const FitOptions& o, const TraceSet& t) {
  Split heldout;
  try {
    heldout = parse_split(o.heldout);
  } catch (const Error&) {
    fail("--heldout: expected train, validation or test, got '", o.heldout, "'");
  }
  if (heldout == Split::kTrain) fail("--heldout: the held-out split cannot be the training split");
  if (t.split_indices(Split::kTrain).empty()) fail(o.traces, ": the train split is empty: nothing to fit on");
  if (t.split_indices(heldout).empty())
    fail(o.traces, ": the ", split_name(heldout), " split is empty: nothing to evaluate on");
  return heldout;
}

// The featurizer config of the command-line options (text head and encoder options checked).
FeaturizerConfig fit_featurizer_config(const FitOptions& o) {
  FeaturizerConfig fc;
  fc.hash_dim = o.hash_dim;
  fc.ngram_max = o.ngram_max;
  fc.text.enabled = o.text;
  fc.text.buckets = o.text_buckets;
  fc.text.max_iter = o.text_max_iter;
  fc.text.word_ngram_max = o.text_words;
  if (o.text_char.size() != 2 || o.text_char[1] < o.text_char[0] || (o.text_char[0] == 0) != (o.text_char[1] == 0))
    fail("--text-char: expected MIN,MAX with 1 <= MIN <= MAX <= 8, or 0,0 for none");
  fc.text.char_ngram_min = o.text_char[0];
  fc.text.char_ngram_max = o.text_char[1];
  fc.text.l2_grid = o.text_l2;
  if (o.text_input == "embedding") fc.text.input = TextInput::kEmbedding;
  else if (o.text_input == "both") fc.text.input = TextInput::kBoth;
  else if (o.text_input != "tfidf") fail("--text-input: expected tfidf, embedding or both, got '", o.text_input, "'");
  if (fc.text.uses_embedding()) {
    if (!o.text) fail("--text-input ", o.text_input, ": the embedding is read by the text head: add --text");
    if (o.encoder.empty()) fail("--text-input ", o.text_input, " needs --encoder DIR (the model the traces were embedded with)");
    fc.encoder.enabled = true;
    fc.encoder.model = o.encoder;
  } else if (!o.encoder.empty()) {
    fail("--encoder: only read with --text-input embedding or both");
  }
  return fc;
}

// The text head's own held-out AUC per model (its probability column alone), as
// eval["workers"][*]["text_head_auc"].
void add_text_head_auc(const TraceSet& t, const std::vector<float>& x, const QueryFeaturizer& f, Split heldout,
                       json& eval) {
  const int off = f.dim() - f.text_head()->n_outputs();
  const auto rows = t.split_indices(heldout);
  for (json& w : eval["workers"]) {
    const int m = t.model_index(w["worker"].get<std::string>());
    std::vector<double> score;
    std::vector<uint8_t> label;
    for (std::size_t q : rows) {
      const float qv = t.quality[t.at(q, static_cast<std::size_t>(m))];
      if (std::isnan(qv)) continue;
      score.push_back(x[q * static_cast<std::size_t>(f.dim()) + static_cast<std::size_t>(off + m)]);
      label.push_back(qv >= 0.5f ? 1 : 0);
    }
    const double auc = roc_auc(score, label);
    w["text_head_auc"] = std::isnan(auc) ? json(nullptr) : json(auc);
  }
}

// report.md: the setup, one row per worker, then the per-task AUC table.
std::string fit_report_markdown(const FitOptions& o, const FeaturizerConfig& fc, const QueryFeaturizer& f,
                                Split heldout, const json& report, const json& eval) {
  std::ostringstream md;
  md << "# Predictor fit: " << o.traces << "\n\n"
     << "Quality: per-worker L2-regularized logistic regression (l2 = " << o.l2 << ") on the hashed n-gram "
     << "featurizer (" << f.dim() << " features: " << fc.hash_dim << " hash buckets, n-grams 1.." << fc.ngram_max
     << ", " << f.tasks().size() << " tasks, length), fitted on the train split (" << report["train_rows"].get<std::size_t>()
     << " queries), evaluated on the " << split_name(heldout) << " split (" << eval["rows"].get<std::size_t>()
     << " queries). AUC counts quality >= 0.5 as positive; Brier uses the quality itself.\n\n"
     << (f.text_head() ? "Text head: on (TF-IDF word/char n-grams, per-model logistic regression cross-fitted on "
                         "train; `head AUC` = its probability alone, `AUC` = the predictor over all features).\n\n"
                       : "")
     << "| worker | train rows | held-out rows | held-out mean quality | AUC | head AUC | Brier | log loss | tokens R2 (log1p) | latency model |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (const json& w : eval["workers"]) {
    const json& L = w["latency"];
    std::ostringstream lat;
    if (L["fitted"].get<bool>())
      lat << "fitted on " << L["rows"].get<int>() << ": " << fmt_num(L["intercept_s"]) << " s + "
          << fmt_num(L["per_token_s"], 5) << " s/token";
    else
      lat << "prior (no logged latency)";
    md << "| " << w["worker"].get<std::string>() << " | " << w["train_rows"].get<int>() << " | "
       << w["heldout_rows"].get<std::size_t>() << " | " << fmt_num(w["heldout_mean_quality"]) << " | "
       << fmt_num(w["auc"]) << " | " << (w.contains("text_head_auc") ? fmt_num(w["text_head_auc"]) : std::string("-"))
       << " | " << fmt_num(w["brier"]) << " | " << fmt_num(w["log_loss"]) << " | "
       << fmt_num(w["tokens_r2_log1p"]) << " | " << lat.str() << " |\n";
  }
  // Per-task AUC (ranking within a task, beyond the task's base rate).
  std::vector<std::string> tasks;
  for (const json& w : eval["workers"])
    for (auto it = w["by_task"].begin(); it != w["by_task"].end(); ++it)
      if (std::find(tasks.begin(), tasks.end(), it.key()) == tasks.end()) tasks.push_back(it.key());
  std::sort(tasks.begin(), tasks.end());
  if (!tasks.empty()) {
    md << "\nAUC within each task of the held-out split (n/a: one class only):\n\n| worker |";
    for (const auto& tk : tasks) md << " " << tk << " |";
    md << "\n|---|";
    for (std::size_t i = 0; i < tasks.size(); ++i) md << "---:|";
    md << "\n";
    for (const json& w : eval["workers"]) {
      md << "| " << w["worker"].get<std::string>() << " |";
      for (const auto& tk : tasks)
        md << " " << (w["by_task"].contains(tk) ? fmt_num(w["by_task"][tk]["auc"]) : std::string("n/a")) << " |";
      md << "\n";
    }
  }
  return md.str();
}

void run_rewards_fit(const FitOptions& o) {
  const TraceSet t = read_traces(o.traces);
  if (!t.has_outcomes()) fail(o.traces, ": no /outcomes datasets: predictors need full-information outcomes");
  const Split heldout = checked_heldout(o, t);
  const FeaturizerConfig fc = fit_featurizer_config(o);
  json text_report;
  const auto t_text = std::chrono::steady_clock::now();
  const QueryFeaturizer f = QueryFeaturizer::for_traces(fc, t, &text_report);
  const double text_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_text).count();
  const std::vector<float> x = f.featurize_all(t);
  PredictorConfig pc;
  pc.quality_l2 = o.l2;
  pc.tokens_l2 = o.l2;
  const auto t0 = std::chrono::steady_clock::now();
  const WorldPredictors p = WorldPredictors::fit(t, x, f.dim(), Split::kTrain, pc);
  const double fit_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  json eval = p.evaluate(t, x, f.dim(), heldout);
  if (f.text_head()) add_text_head_auc(t, x, f, heldout, eval);

  json report{{"traces", o.traces},
              {"source", t.source},
              {"queries", t.n_queries()},
              {"models", t.n_models()},
              {"train_rows", t.split_indices(Split::kTrain).size()},
              {"heldout_split", split_name(heldout)},
              {"featurizer", f.summary_json()},
              {"text_head", o.text ? text_report : json(nullptr)},
              {"featurize_seconds", text_s},
              {"quality_model", "L2-regularized logistic regression (Newton/IRLS), positive = quality >= 0.5 for AUC"},
              {"l2", o.l2},
              {"fit_seconds", fit_s},
              {"heldout", eval}};
  make_dirs(o.report);
  write_json_atomic(o.report + "/report.json", report);
  write_file_atomic(o.report + "/report.md", fit_report_markdown(o, fc, f, heldout, report, eval));

  std::cout << std::left << std::setw(36) << "worker" << std::right << std::setw(8) << "AUC" << std::setw(9) << "Brier"
            << std::setw(8) << "rows" << "\n";
  for (const json& w : eval["workers"])
    std::cout << std::left << std::setw(36) << w["worker"].get<std::string>() << std::right << std::setw(8)
              << fmt_num(w["auc"]) << std::setw(9) << fmt_num(w["brier"]) << std::setw(8)
              << w["heldout_rows"].get<std::size_t>() << "\n";
  std::cout << "wrote " << o.report << "/report.json and " << o.report << "/report.md (fit " << std::fixed
            << std::setprecision(2) << fit_s << " s)\n";
}

void setup_world(CLI::App& app) {
  {
    CLI::App* rewards = group(app, "rewards", "Reward models: fit and report the outcome predictors");
    auto o = std::make_shared<FitOptions>();
    CLI::App* c = rewards->add_subcommand(
        "fit", "Fit the quality / output-token / latency predictors on the train split and report held-out AUC and "
               "Brier score per worker");
    c->add_option("--traces", o->traces, "trace file (.h5)")->required();
    c->add_option("--report", o->report, "output directory: report.json and report.md")->required();
    c->add_option("--hash-dim", o->hash_dim, "hash buckets of the n-gram featurizer")->check(CLI::Range(1, 1 << 16));
    c->add_option("--ngram-max", o->ngram_max, "longest word n-gram")->check(CLI::Range(1, 3));
    c->add_flag("--text", o->text,
                "add the text head (TF-IDF word and character n-grams, per-model logistic regression, "
                "cross-fitted on train) to the features: features.text.enabled");
    c->add_option("--text-buckets", o->text_buckets, "hash buckets of the text head's n-grams")
        ->check(CLI::Range(16, 1 << 24));
    c->add_option("--text-max-iter", o->text_max_iter, "L-BFGS iterations per text-head fit")->check(CLI::Range(1, 100000));
    c->add_option("--text-char", o->text_char, "character n-gram lengths MIN,MAX of the text head (0,0: none)")
        ->delimiter(',')->expected(2)->check(CLI::Range(0, 8));
    c->add_option("--text-words", o->text_words, "longest word n-gram of the text head (0: none)")->check(CLI::Range(0, 3));
    c->add_option("--text-l2", o->text_l2, "L2 grid of the text head, chosen per model by out-of-fold log loss")
        ->delimiter(',')->check(CLI::Range(1e-9, 1e9));
    c->add_option("--text-input", o->text_input,
                  "what the text head reads: tfidf (default), embedding (the traces' /queries/embedding) or both");
    c->add_option("--encoder", o->encoder, "sentence-transformers directory the traces were embedded with (--text-input "
                                           "embedding|both; its weights' sha256 must match the traces')");
    c->add_option("--l2", o->l2, "L2 regularization of the logistic and ridge models")->check(CLI::Range(0.0, 1e9));
    c->add_option("--heldout", o->heldout, "held-out split: test or validation");
    c->callback([o]() { run_rewards_fit(*o); });
  }
}

}  // namespace

CONDUCTOR_COMMAND(setup_world);

}  // namespace conductor::cli
