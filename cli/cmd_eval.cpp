// `conductor eval`, `conductor ope` and `conductor traces simulate-logs` (docs/evaluation.md).
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/json_util.h"
#include "core/log.h"
#include "policies/compute.h"
#include "core/error.h"
#include "eval/evaluate.h"
#include "eval/ope_policy.h"
#include "eval/simulate_logs.h"
#include "traces/store.h"

namespace conductor::cli {
namespace {

struct EvalArgs {
  std::vector<std::string> checkpoints, labels;
  std::string traces, split = "test", report;
  double cost_weight = 0;
  uint64_t seed = 0;
  int num_envs = 16;
  bool sample = false;
  int aiq_bootstrap = 1000;
  std::vector<double> cost_weights;
  int threads = 1;
  std::string scenario = "none";
  std::string select_on;
};

struct OpeArgs {
  std::string checkpoint, logs, traces, report, ci = "bootstrap";
  int bootstrap = 1000;
  double confidence = 0.95, clip = 100.0, tau = 100.0;
  uint64_t seed = 0;
  bool stochastic = false;
  int threads = 1;
};

struct SimArgs {
  std::string traces, logging = "uniform", out, split = "train";
  std::size_t n = 20000;
  uint64_t seed = 0;
};

void setup_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* c = app.add_subcommand(
      "eval", "Full-information replay of conductor checkpoints next to baselines; writes report.json, report.md, frontier.svg");
  c->add_option("--checkpoint", a->checkpoints,
                "run folder or checkpoint folder (repeat to draw the conductor's frontier; the first is `conductor`)");
  c->add_option("--label", a->labels, "name of each --checkpoint in the report (same count)");
  c->add_option("--traces", a->traces, "full-information trace file (.h5)")->required();
  c->add_option("--split", a->split, "train | validation | test")->capture_default_str();
  c->add_option("--report", a->report, "output folder")->required();
  CLI::Option* cost_weight = c->add_option("--cost-weight", a->cost_weight,
                "USD weight the router and cascade are tuned for (default: the first checkpoint's w_cost / w_quality)");
  c->add_option("--seed", a->seed, "seed of the random baseline and the replay")->capture_default_str();
  c->add_option("--num-envs", a->num_envs, "environments stepped together during replay")->capture_default_str();
  c->add_flag("--sample", a->sample, "sample the conductor's actions (seeded by --seed) instead of taking the greedy ones");
  c->add_option("--aiq-bootstrap", a->aiq_bootstrap,
                "paired bootstrap resamples over queries for AIQ intervals (0 = none)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  c->add_option("--cost-weights", a->cost_weights,
                "cost-conditioned checkpoints (env.reward.w_cost_range): also evaluate at these cost weights "
                "per USD, one frontier point each (comma-separated)")
      ->delimiter(',');
  c->add_option("--threads", a->threads, "Compute threads of the policy (LibTorch and OpenBLAS together)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  c->add_option("--scenario", a->scenario,
                "fault for the whole split, on conductors and baselines alike: none | down:W | down-announced:W | "
                "slow:W:FACTOR | price:W:FACTOR (docs/evaluation.md)")
      ->capture_default_str();
  c->add_option("--select-on", a->select_on,
                "choose among checkpoints that share a --label on this split (validation or train): the one with the "
                "highest mean reward at its cost weight is evaluated (docs/evaluation.md, \"Selection on validation\")");
  c->callback([a, cost_weight] {
    set_compute_threads(a->threads);
    eval::EvalOptions o;
    o.scenario = a->scenario;
    o.aiq_bootstrap = a->aiq_bootstrap;
    o.cost_weights = a->cost_weights;
    o.checkpoints = a->checkpoints;
    o.labels = a->labels;
    o.traces_path = a->traces;
    o.split = parse_split(a->split);
    if (!a->select_on.empty()) {
      try {
        o.select_on = parse_split(a->select_on);
      } catch (const Error& e) {
        fail("--select-on: ", e.what());
      }
    }
    if (cost_weight->count() > 0) o.cost_weight = a->cost_weight;  // any value given is checked, none is a marker
    o.seed = a->seed;
    o.num_envs = a->num_envs;
    o.greedy = !a->sample;
    const auto report = eval::run_evaluation(o);
    std::cout << eval::write_report(report, a->report);
    log_info("wrote ", a->report, "/report.json, report.md, frontier.svg");
  });
}

void setup_ope(CLI::App& app) {
  auto a = std::make_shared<OpeArgs>();
  CLI::App* c = app.add_subcommand("ope", "Off-policy evaluation of a conductor checkpoint on bandit logs (/decisions)");
  c->add_option("--checkpoint", a->checkpoint, "run folder or checkpoint folder")->required();
  c->add_option("--logs", a->logs, "bandit-log trace file with /decisions (.h5)")->required();
  c->add_option("--traces", a->traces,
                "trace file holding the logged queries (default: --logs); with full-information outcomes the true value is reported too");
  c->add_option("--report", a->report, "output folder")->required();
  c->add_option("--ci", a->ci, "bootstrap | normal")->capture_default_str();
  c->add_option("--bootstrap", a->bootstrap, "bootstrap resamples")->capture_default_str();
  c->add_option("--confidence", a->confidence, "interval level")->capture_default_str();
  c->add_option("--clip", a->clip, "IPS weight cap")->capture_default_str();
  c->add_option("--switch-tau", a->tau, "switch-DR weight threshold")->capture_default_str();
  c->add_option("--seed", a->seed, "bootstrap seed")->capture_default_str();
  c->add_flag("--stochastic", a->stochastic, "evaluate the sampling policy instead of the greedy one");
  c->add_option("--threads", a->threads, "Compute threads of the policy (LibTorch and OpenBLAS together)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  c->callback([a] {
    set_compute_threads(a->threads);
    eval::OpePolicyOptions o;
    o.checkpoint = a->checkpoint;
    o.logs_path = a->logs;
    o.traces_path = a->traces.empty() ? a->logs : a->traces;
    o.stochastic = a->stochastic;
    if (a->ci == "bootstrap") o.ope.ci = eval::CiMethod::kBootstrap;
    else if (a->ci == "normal") o.ope.ci = eval::CiMethod::kNormal;
    else fail("--ci '", a->ci, "': expected bootstrap or normal");
    o.ope.bootstrap_samples = a->bootstrap;
    o.ope.confidence = a->confidence;
    o.ope.ips_clip = a->clip;
    o.ope.switch_tau = a->tau;
    o.ope.seed = a->seed;
    const auto report = eval::run_ope(o);
    std::cout << eval::write_ope_report(report, a->report);
  });
}

void setup_simulate_logs(CLI::App& app) {
  auto a = std::make_shared<SimArgs>();
  CLI::App* traces = group(app, "traces", "Trace files: import, synthesize, inspect");
  CLI::App* c = traces->add_subcommand("simulate-logs", "Bandit logs (/decisions) simulated from full-information traces");
  c->add_option("--traces", a->traces, "full-information trace file (.h5)")->required();
  c->add_option("--logging", a->logging, "uniform | epsilon-greedy:<eps>")->capture_default_str();
  c->add_option("--out", a->out, "output log file (.h5), written atomically")->required();
  c->add_option("--split", a->split, "split the logged queries are drawn from")->capture_default_str();
  c->add_option("--n", a->n, "number of logged decisions")->capture_default_str();
  c->add_option("--seed", a->seed, "seed (same seed, same file)")->capture_default_str();
  c->callback([a] {
    const TraceSet t = read_traces(a->traces);
    const auto logging = eval::parse_logging_policy(a->logging, t);
    const TraceSet logs = eval::simulate_logs(t, parse_split(a->split), logging, a->n, a->seed);
    write_traces(logs, a->out);
    std::cout << "wrote " << a->out << ": " << logs.decisions.size() << " decisions, logging " << logging.id()
              << ", split " << a->split << ", " << logs.n_models() << " models\n";
  });
}

void setup_eval_pool(CLI::App& app) {
  struct PoolArgs {
    std::vector<std::string> reports;
    std::string out;
    int resamples = 2000;
    uint64_t seed = 0;
  };
  auto a = std::make_shared<PoolArgs>();
  CLI::App* c = app.add_subcommand(
      "eval-pool",
      "Frontier AIQ pooled over the evaluations of several training seeds (paired bootstrap over queries and seeds) "
      "from their `conductor eval` report folders");
  c->add_option("--report", a->reports, "report folder of `conductor eval` (repeat: one per training seed)")->required();
  c->add_option("--resamples", a->resamples, "bootstrap resamples")->capture_default_str()->check(CLI::Range(1, 1000000));
  c->add_option("--seed", a->seed, "bootstrap seed")->capture_default_str();
  c->add_option("--out", a->out, "also write pooled.json and pooled.md into this folder");
  c->callback([a] {
    const json pooled = eval::pool_evaluations(a->reports, a->resamples, a->seed);
    const std::string md = eval::pooled_markdown(pooled);
    std::cout << md;
    if (!a->out.empty()) {
      make_dirs(a->out);
      write_json_atomic(a->out + "/pooled.json", pooled);
      write_file_atomic(a->out + "/pooled.md", md);
    }
  });
}

void setup_eval_commands(CLI::App& app) {
  setup_eval(app);
  setup_eval_pool(app);
  setup_ope(app);
  setup_simulate_logs(app);
}

}  // namespace

CONDUCTOR_COMMAND(setup_eval_commands);

}  // namespace conductor::cli
