// Bad-input table of the config surface (issue 27): run configs as `conductor train` and
// `conductor config check` read them (a YAML file, then --set overrides), each with a substring of
// the error it must give. Every message names the file (or the --set), the key path and what was
// expected. A new config key gets a row here (docs/bad-inputs.md counts the rows).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/config.h"
#include "trainer/run_config.h"

namespace conductor {
namespace {

// A conductor run small enough that the rows which pass parsing build its world in milliseconds.
const char* kBase =
    "seed: 1\n"
    "env: {id: conductor, num_envs: 4, synthetic: {queries: 120, seed: 1}, max_steps: 2}\n"
    "policy: {kind: mlp, hidden: [16]}\n"
    "ppo: {num_steps: 8, num_minibatches: 2}\n"
    "total_steps: 64\n";

struct Row {
  std::vector<std::string> sets;  // --set overrides applied to `yaml`
  std::string needle;             // substring of the error
  std::string yaml = kBase;
};

std::string error_of(const Row& row) {
  try {
    ConfigDoc doc = ConfigDoc::load_string(row.yaml, "run.yaml");
    doc.apply_overrides(row.sets);
    check_run_config(doc);
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

const std::vector<Row>& rows() {
  static const std::vector<Row> r = {
      // The document and --set syntax.
      {{}, "run.yaml:2:1: invalid YAML: end of map flow not found", "env: {id: bandit\n"},
      {{}, "run.yaml:1: expected a mapping of keys at the top level, got a list", "- a\n- b\n"},
      {{}, "run.yaml:1: key 'env': expected a mapping, got a list", "env: [1, 2]\n"},
      {{}, "run.yaml: key 'env.id': required key is missing (expected a string)", "seed: 1\n"},
      {{}, "run.yaml:3: unknown key 'ppo.clip_coeff'; valid keys under 'ppo': ", "env: {id: cartpole}\nppo:\n  clip_coeff: 0.1\n"},
      {{"noequals"}, "--set 'noequals': expected KEY.PATH=VALUE"},
      {{"=3"}, "--set '=3': expected KEY.PATH=VALUE"},
      {{"ppo..gamma=1"}, "--set 'ppo..gamma=1': empty component in key path"},
      {{"seed.x=1"}, "--set 'seed.x=1': 'seed' is '1', not a mapping"},
      {{"ppo.gamma=[1,"}, "--set 'ppo.gamma=[1,': value is not valid YAML"},
      {{"learning_rate=0.1"}, "run.yaml (--set learning_rate): unknown key 'learning_rate'; valid keys: "},
      // Top-level keys.
      {{"seed=-1"}, "run.yaml (--set seed): key 'seed': expected a non-negative integer, got '-1'"},
      {{"seed=abc"}, "key 'seed': expected a non-negative integer, got 'abc'"},
      {{"algo=sac"}, "key 'algo': unknown value 'sac': expected one of bc, grpo, ppo"},
      {{"total_steps=0"}, "key 'total_steps': value 0 out of range: expected 1 <= value <= "},
      {{"total_steps=1e3"}, "key 'total_steps': expected an integer, got '1e3'"},
      {{"total_steps=[1]"}, "key 'total_steps': expected an integer, got a list"},
      {{"checkpoint_every=-1"}, "key 'checkpoint_every': value -1 out of range: expected 0 <= value <= "},
      {{"checkpoint_keep=1"}, "key 'checkpoint_keep': value 1 is too small: expected at least 2"},
      {{"checkpoint_keep=0"}, "key 'checkpoint_keep': value 0 out of range: expected 1 <= value <= "},
      {{"threads=0"}, "key 'threads': value 0 out of range: expected 1 <= value <= 1024"},
      {{"threads=2000"}, "key 'threads': value 2000 out of range: expected 1 <= value <= 1024"},
      // env.
      {{"env.id=nope"}, "unknown environment 'nope'"},
      {{"env=3"}, "key 'env': expected a mapping, got '3'"},
      {{"env.num_envs=0"}, "key 'env.num_envs': value 0 out of range: expected 1 <= value <= "},
      {{"env.num_envs=1.5"}, "key 'env.num_envs': expected an integer, got '1.5'"},
      {{"env.max_steps=0"}, "key 'env.max_steps': value 0 out of range: expected 1 <= value <= 64"},
      {{"env.max_steps=65"}, "key 'env.max_steps': value 65 out of range: expected 1 <= value <= 64"},
      {{"env.split=tests"}, "key 'env.split': expected train, validation or test, got 'tests'"},
      {{"env.mode=random"}, "key 'env.mode': unknown value 'random': expected one of sample, sequential"},
      {{"env.traces=x.h5"}, "give either 'traces: PATH' or 'synthetic: {...}', not both"},
      {{"env.colour=red"}, "unknown key 'env.colour'; valid keys under 'env': "},
      {{"env.synthetic.queries=0"}, "key 'env.synthetic.queries': value 0 out of range: expected 1 <= value <= "},
      {{"env.synthetic.test_fraction=1.5"}, "key 'env.synthetic.test_fraction': value 1.5 out of range"},
      {{"env.synthetic.validation_fraction=0.95"}, "key 'env.synthetic.validation_fraction': test_fraction + validation_fraction must be <= 1"},
      {{"env.synthetic.colour=red"}, "unknown key 'env.synthetic.colour'"},
      {{"env.synthetic.cue_fidelity=2"}, "key 'env.synthetic.cue_fidelity': value 2 out of range: expected 0 <= value <= 1"},
      {{"env.features.hash_dim=0"}, "key 'env.features.hash_dim': value 0 out of range"},
      {{"env.features.ngram_max=4"}, "key 'env.features.ngram_max': value 4 out of range: expected 1 <= value <= 3"},
      // features.encoder (docs/encoder.md, "Encoder features").
      {{"env.features.encoder.enabled=true"}, "key 'env.features.encoder.model': the encoder needs model: DIR"},
      {{"env.features.encoder.enabled=true", "env.features.encoder.model=/nonexistent-encoder"},
       "key 'env.features.encoder.model': '/nonexistent-encoder' is not a directory"},
      {{"env.features.text.input=bert"}, "key 'env.features.text.input': unknown value 'bert'"},
      {{"env.features.text.enabled=true", "env.features.text.input=embedding"},
       "key 'env.features.text.input': 'embedding' reads the query's sentence embedding: set encoder"},
      {{"env.features.encoder.enabled=true", std::string("env.features.encoder.model=") + CONDUCTOR_SOURCE_DIR + "/tests/llm/fixtures/bert_tiny"},
       "key 'env.features.encoder': the sentence embedding is read by the text head"},
      {{"env.features.encoder.enabled=true", std::string("env.features.encoder.model=") + CONDUCTOR_SOURCE_DIR + "/tests/llm/fixtures/bert_tiny", "env.features.text.enabled=true", "env.features.text.input=both"},
       "has no query embeddings (/queries/embedding); add them with `conductor traces embed --model "},
      {{"env.reward.w_cost=-1"}, "key 'env.reward.w_cost': expected a finite non-negative weight"},
      {{"env.reward.w_quality=.nan"}, "key 'env.reward.w_quality': expected a finite non-negative weight"},
      {{"env.reward.w_latency=.inf"}, "key 'env.reward.w_latency': expected a finite non-negative weight"},
      {{"env.reward.w_cost=lots"}, "key 'env.reward.w_cost': expected a number, got 'lots'"},
      {{"env.reward.w_cost_range=[10,3]"}, "key 'env.reward.w_cost_range': expected [lo, hi] with 0 < lo < hi"},
      {{"env.reward.w_cost_range=[0,3]"}, "key 'env.reward.w_cost_range': expected [lo, hi] with 0 < lo < hi"},
      {{"env.reward.w_cost_range=[1,2,3]"}, "key 'env.reward.w_cost_range': expected [lo, hi] with 0 < lo < hi"},
      {{"env.reward.w_cost_range=[100,3000]"}, "key 'env.reward.w_cost': w_cost 0 (the default cost weight) must lie in w_cost_range [100, 3000]"},
      {{"env.reward.budget.mode=cap"}, "key 'env.reward.budget.cap_usd': required key is missing (expected a number)"},
      {{"env.reward.budget.mode=cap", "env.reward.budget.cap_usd=0"}, "key 'env.reward.budget.cap_usd': expected a positive cost cap in USD"},
      {{"env.reward.budget.mode=hard"}, "key 'env.reward.budget.mode': unknown value 'hard': expected one of none, cap, lagrange"},
      {{"env.reward.budget.mode=lagrange"}, "key 'env.reward.budget.target_mean_cost_usd': required key is missing"},
      {{"env.workers=[]"}, "key 'env.workers': the worker pool is empty"},
      {{"env.workers=everything"}, "key 'env.workers': expected a list of worker names or 'all', got 'everything'"},
      {{"env.workers=[gpt-5, gpt-5]"}, "key 'env.workers': worker 'gpt-5' is listed twice"},
      {{"env.finish_rules=[]"}, "key 'env.finish_rules': expected at least one of last, vote, most_trusted"},
      {{"env.finish_rules=[best]"}, "key 'env.finish_rules': unknown finish rule 'best'"},
      {{"env.finish_rules=[last, last]"}, "key 'env.finish_rules': finish rule 'last' is listed twice"},
      {{"env.finish_rules=[last]", "env.default_finish=vote"}, "key 'env.default_finish': 'vote' is not one of finish_rules"},
      {{"env.default_finish=best"}, "key 'env.default_finish': unknown finish rule 'best'"},
      {{"env.pool.min_size=0"}, "key 'env.pool.min_size': value 0 out of range"},
      {{"env.pool.randomize=often"}, "key 'env.pool.randomize': expected a boolean (true/false), got 'often'"},
      {{"env.reward_model=oracle"}, "key 'env.reward_model': unknown value 'oracle': expected one of replay, model, hybrid"},
      {{"env.faults=3"}, "key 'env.faults': expected a list, got '3'"},
      {{"env.faults=[3]"}, "key 'env.faults[0]': expected a mapping, got '3'"},
      {{"env.faults=[{worker: gpt-5}]"}, "key 'env.faults[0].type': required key is missing (expected one of outage"},
      {{"env.faults=[{type: meteor}]"}, "key 'env.faults[0].type': unknown value 'meteor'"},
      {{"env.faults=[{type: outage, worker: gpt-5}]"}, "key 'env.faults[0].duration': required key is missing"},
      {{"env.faults=[{type: outage, worker: gpt-5, duration: 10}]"}, "key 'env.faults[0].start': a windowed fault needs exactly one of 'start' (scheduled) or 'rate' (random)"},
      {{"env.faults=[{type: outage, worker: gpt-5, duration: 10, rate: 2}]"}, "key 'env.faults[0].rate': value 2 out of range: expected 0 <= value <= 1"},
      {{"env.faults=[{type: outage, duration: 10, start: 0}]"}, "key 'env.faults[0].worker': required key is missing"},
      {{"env.world_seed=-3"}, "key 'env.world_seed': expected a non-negative integer, got '-3'"},
      {{"env.observe_price_changes=sometimes"}, "key 'env.observe_price_changes': expected a boolean (true/false), got 'sometimes'"},
      {{"env.observe_predictions=1.5"}, "key 'env.observe_predictions': expected a boolean (true/false), got '1.5'"},
      // policy.
      {{"policy.kind=rnn"}, "key 'policy.kind': unknown value 'rnn': expected one of "},
      {{"policy.hidden=[0]"}, "key 'policy.hidden': width 0 at index 0"},
      {{"policy.hidden=64"}, "key 'policy.hidden': expected a list, got '64'"},
      {{"policy.hidden=[16, x]"}, "key 'policy.hidden[1]': expected an integer, got 'x'"},
      {{"policy.activation=gelu"}, "key 'policy.activation': unknown value 'gelu': expected one of tanh, relu"},
      {{"policy.depth=3"}, "unknown key 'policy.depth'"},
      // ppo.
      {{"ppo.learning_rate=-1"}, "key 'ppo.learning_rate': value -1 out of range: expected 0 <= value <= 10"},
      {{"ppo.learning_rate=fast"}, "key 'ppo.learning_rate': expected a number, got 'fast'"},
      {{"ppo.gamma=1.5"}, "key 'ppo.gamma': value 1.5 out of range: expected 0 <= value <= 1"},
      {{"ppo.gae_lambda=-0.1"}, "key 'ppo.gae_lambda': value -0.1 out of range"},
      {{"ppo.num_steps=0"}, "key 'ppo.num_steps': value 0 out of range"},
      {{"ppo.num_minibatches=3"}, "key 'ppo.num_minibatches': the batch (env.num_envs * ppo.num_steps = 32) is not divisible"},
      {{"ppo.update_epochs=0"}, "key 'ppo.update_epochs': value 0 out of range"},
      {{"ppo.clip_coef=-1"}, "key 'ppo.clip_coef': value -1 out of range"},
      {{"ppo.ent_coef=-1"}, "key 'ppo.ent_coef': value -1 out of range"},
      {{"ppo.target_kl=-1"}, "key 'ppo.target_kl': value -1 out of range"},
      {{"ppo.norm_adv=maybe"}, "key 'ppo.norm_adv': expected a boolean (true/false), got 'maybe'"},
      {{"ppo.anneal_lr=[true]"}, "key 'ppo.anneal_lr': expected a boolean (true/false), got a list"},
      {{"ppo.clip_coeff=0.1"}, "(--set ppo.clip_coeff): unknown key 'ppo.clip_coeff'; valid keys under 'ppo': "},
      {{"ppo=fast"}, "key 'ppo': expected a mapping, got 'fast'"},
      // grpo.
      {{"grpo.group_size=1"}, "key 'grpo.group_size': value 1 out of range: expected 2 <= value <= "},
      {{"grpo.scale_rewards=std"}, "key 'grpo.scale_rewards': unknown value 'std': expected one of group, batch, none"},
      {{"grpo.loss_agg=token"}, "key 'grpo.loss_agg': unknown value 'token': expected one of step, episode, constant"},
      {{"grpo.kl=0.1"}, "unknown key 'grpo.kl'"},
      // bc_warmstart.
      {{"bc_warmstart.samples=0"}, "key 'bc_warmstart.samples': value 0 out of range"},
      {{"bc_warmstart.epochs=0"}, "key 'bc_warmstart.epochs': value 0 out of range"},
      {{"bc_warmstart.expert=oracle"}, "key 'bc_warmstart.expert': unknown value 'oracle': expected one of best_fixed, per_task, router, cascade"},
      {{"bc_warmstart.logs=x.h5"}, "key 'bc_warmstart.logs': is set but bc_warmstart.enabled is false"},
      {{"bc_warmstart.logs=x.h5", "bc_warmstart.enabled=true", "algo=bc"}, "key 'bc_warmstart.logs': algo bc imitates the environment's expert"},
      {{"bc_warmstart.weighting=best"}, "key 'bc_warmstart.weighting': unknown value 'best': expected one of advantage, uniform"},
      {{"bc_warmstart.beta=0"}, "key 'bc_warmstart.beta': value 0 out of range"},
      {{"bc_warmstart.max_weight=0.5"}, "key 'bc_warmstart.max_weight': value 0.5 out of range"},
      {{"bc_warmstart.enabled=yesplease"}, "key 'bc_warmstart.enabled': expected a boolean (true/false), got 'yesplease'"},
      {{"bc_warmstart.learning_rate=-1"}, "key 'bc_warmstart.learning_rate': value -1 out of range"},
      // log and final_eval.
      {{"log.console=loud"}, "key 'log.console': expected a boolean (true/false), got 'loud'"},
      {{"log.console_every=0"}, "key 'log.console_every': value 0 out of range"},
      {{"log.colour=true"}, "unknown key 'log.colour'; valid keys under 'log': "},
      {{"final_eval.set=[nokey]"}, "key 'final_eval.set': expected key=value entries, got 'nokey'"},
      {{"final_eval.set=env.split=test"}, "key 'final_eval.set': expected a list, got 'env.split=test'"},
      {{"final_eval.episodes=0"}, "key 'final_eval.episodes': value 0 out of range"},
      {{"final_eval.enabled=sometimes"}, "key 'final_eval.enabled': expected a boolean (true/false), got 'sometimes'"},
  };
  return r;
}

TEST(BadConfigInputs, EveryRowIsRefusedNamingTheKey) {
  ASSERT_EQ(error_of(Row{{}, ""}), "<no error>");  // the base config is valid: each row's error is its own
  for (const Row& row : rows()) {
    std::string sets;
    for (const auto& s : row.sets) sets += " --set " + s;
    const std::string e = error_of(row);
    EXPECT_NE(e.find(row.needle), std::string::npos)
        << (row.yaml == kBase ? "base" : row.yaml) << sets << "\n  expected: " << row.needle << "\n  got:      " << e;
  }
  EXPECT_EQ(rows().size(), 120u);  // docs/bad-inputs.md
}

}  // namespace
}  // namespace conductor
