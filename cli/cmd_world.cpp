// conductor rewards fit | conductor bench env: the simulated world's predictors and the routing
// environment's throughput.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/random.h"
#include "envs/bench_world.h"
#include "envs/conductor_env.h"
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

// ---------------------------------------------------------------------------------------------
// bench env

struct BenchOptions {
  std::string traces;
  int workers = 11;
  int queries = 4096;
  int num_envs = 256;
  int max_steps = 1;
  double seconds = 2.0;
};

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Runs `threads` environments (one per thread) for `seconds`; returns total steps per wall-clock
// second, and in *cpu_rate the sum over threads of steps per second of the thread's own CPU time
// (what the threads would do on otherwise idle cores).
double bench_threads(const ConductorEnvConfig& cfg, std::shared_ptr<const ConductorWorld> world,
                     const BenchOptions& o, int threads, long long* steps_out, double* cpu_rate) {
  std::vector<std::unique_ptr<ConductorEnv>> envs;
  for (int t = 0; t < threads; ++t) {
    envs.push_back(std::make_unique<ConductorEnv>(cfg, world, o.num_envs));
    envs.back()->reset(derive_seed(7, t));
  }
  std::atomic<bool> stop{false};
  std::vector<long long> steps(threads, 0);
  std::vector<double> cpu(threads, 0.0);
  auto worker = [&](int t) {
    const double c0 = thread_cpu_seconds();
    ConductorEnv& env = *envs[t];
    const int N = env.num_envs();
    std::vector<int32_t> actions(N);
    long long n = 0, it = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int r = 0; r < 64; ++r, ++it) {
        round_robin_actions(env, it, actions.data());
        env.step(actions.data());
        n += N;
      }
    }
    steps[t] = n;
    cpu[t] = thread_cpu_seconds() - c0;
  };
  // Warm-up: touch every buffer once.
  for (auto& e : envs) {
    std::vector<int32_t> a(o.num_envs, 0);
    const int A = e->spec().n_actions;
    for (int i = 0; i < o.num_envs; ++i)
      while (!e->action_mask()[static_cast<std::size_t>(i) * A + a[i]]) ++a[i];
    e->step(a.data());
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker, t);
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  stop = true;
  for (auto& th : pool) th.join();
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  long long total = 0;
  *cpu_rate = 0;
  for (int t = 0; t < threads; ++t) {
    total += steps[t];
    if (cpu[t] > 0) *cpu_rate += steps[t] / cpu[t];
  }
  *steps_out = total;
  return total / dt;
}

void run_bench_env(const BenchOptions& o) {
  std::shared_ptr<const TraceSet> traces;
  if (!o.traces.empty())
    traces = std::make_shared<const TraceSet>(read_traces(o.traces));
  else
    traces = std::make_shared<const TraceSet>(bench_world(o.workers, o.queries, 1));
  std::string yaml = "max_steps: " + std::to_string(o.max_steps) + "\nsplit: " +
                     (o.traces.empty() ? std::string("train") : std::string("test")) + "\n";
  ConfigDoc doc = ConfigDoc::load_string(yaml, "bench env");
  ConfigReader r = doc.root();
  const ConductorEnvConfig cfg = ConductorEnvConfig::parse(r);
  const auto world = ConductorWorld::build(cfg, traces);
  const int M = static_cast<int>(world->workers.size());
  {
    ConductorEnv probe(cfg, world, 1);
    std::cout << "routing environment: " << M << " workers, max_steps " << o.max_steps << ", obs_dim "
              << probe.spec().obs_dim << ", " << o.num_envs << " envs per thread, "
              << world->split_queries.size() << " queries (" << (o.traces.empty() ? "bench world" : o.traces) << ")\n";
  }
  {
    std::ifstream load("/proc/loadavg");
    std::string l1;
    if (load >> l1) std::cout << "load average (1 min) before the run: " << l1 << " on " << std::thread::hardware_concurrency() << " cores\n";
  }
  std::cout << std::left << std::setw(9) << "threads" << std::right << std::setw(14) << "steps" << std::setw(10)
            << "seconds" << std::setw(16) << "steps/s" << std::setw(22) << "steps/s per CPU-s" << "\n";
  double best = 0;
  for (int threads : {1, 2}) {
    long long steps = 0;
    double cpu_rate = 0;
    const double rate = bench_threads(cfg, world, o, threads, &steps, &cpu_rate);
    best = std::max(best, rate);
    std::cout << std::left << std::setw(9) << threads << std::right << std::setw(14) << steps << std::setw(10)
              << std::fixed << std::setprecision(2) << o.seconds << std::setw(16) << std::setprecision(0) << rate
              << std::setw(22) << cpu_rate << "\n";
  }
  std::cout << "env_steps_per_s: " << std::fixed << std::setprecision(0) << best << "\n";
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
  {
    CLI::App* bench = group(app, "bench", "Benchmarks");
    auto o = std::make_shared<BenchOptions>();
    CLI::App* c = bench->add_subcommand(
        "env", "Batched steps per second of the routing environment at 1 and 2 threads (last line: env_steps_per_s)");
    c->add_option("--traces", o->traces, "bench on this trace file's test split instead of a generated world");
    c->add_option("--workers", o->workers, "workers of the generated world")->check(CLI::Range(1, 64));
    c->add_option("--queries", o->queries, "queries of the generated world")->check(CLI::Range(1, 10000000));
    c->add_option("--num-envs", o->num_envs, "sub-environments per thread")->check(CLI::Range(1, 1 << 20));
    c->add_option("--max-steps", o->max_steps, "max_steps of the environment (1 = single-step routing)")
        ->check(CLI::Range(1, 64));
    c->add_option("--seconds", o->seconds, "measured seconds per thread count")->check(CLI::Range(0.1, 600.0));
    c->callback([o]() { run_bench_env(*o); });
  }
}

}  // namespace

CONDUCTOR_COMMAND(setup_world);

}  // namespace conductor::cli
