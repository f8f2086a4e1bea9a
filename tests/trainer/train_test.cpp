// End-to-end training on the sanity environments: learning, masking, determinism, resume, errors.
// Every run is seeded and small (seconds); the thresholds leave wide margins over what the seeded
// runs reach (documented per test).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/random.h"
#include "envs/bandit.h"
#include "policies/actor_critic.h"
#include "tests/test_util.h"
#include "traces/catalog.h"
#include "traces/store.h"
#include "traces/synth.h"
#include "trainer/final_eval.h"
#include "trainer/run_config.h"
#include "trainer/train.h"

namespace conductor {
namespace {

namespace fs = std::filesystem;

const char* kBandit = R"(
seed: 3
env: {id: bandit, num_envs: 64, n_contexts: 4, n_actions: 5, masked_trap: true, noise: 0.1}
policy: {hidden: [32, 32]}
ppo: {num_steps: 4, learning_rate: 0.003, num_minibatches: 4, update_epochs: 4, ent_coef: 0.0, gamma: 0.0, gae_lambda: 0.0}
total_steps: 16384
checkpoint_every: 20
log: {console: false}
)";

const char* kCartPole = R"(
seed: 5
env: {id: cartpole, num_envs: 4}
policy: {hidden: [16, 16]}
ppo: {num_steps: 32, num_minibatches: 2, update_epochs: 2}
total_steps: 1280
checkpoint_every: 2
log: {console: false}
)";

TrainResult train(const std::string& yaml, const std::string& dir, TrainOptions opt = {},
                  std::vector<std::string> sets = {}) {
  ConfigDoc doc = ConfigDoc::load_string(yaml, "test.yaml");
  doc.apply_overrides(sets);
  opt.run_dir = dir;
  opt.console = false;
  return run_training(doc, opt);
}

std::vector<NamedTensor> weights(const std::string& dir) {
  MlpSpec s;
  return load_mlp_tensors(dir, &s);
}

TEST(Train, BanditLearnsTheOptimalActionAndNeverSamplesMaskedOnes) {
  const std::string dir = testing::temp_dir() + "/run";
  const TrainResult r = train(kBandit, dir);
  EXPECT_FALSE(r.interrupted);
  EXPECT_EQ(r.updates, 64);
  // The env checks masks in this build (no NDEBUG): sampling the masked, higher-paying trap
  // action would have thrown during training. Now evaluate the learned policy by sampling.
  BanditConfig bc;
  bc.n_contexts = 4;
  bc.n_actions = 5;
  bc.masked_trap = true;
  const BanditProblem problem = BanditProblem::make(bc);
  auto policy = load_policy(dir);
  const int n = 4000;
  std::vector<float> obs(n * 4, 0.f);
  std::vector<uint8_t> mask(n * 5);
  std::vector<int> ctx(n);
  Rng rng(17);
  for (int i = 0; i < n; ++i) {
    ctx[i] = static_cast<int>(rng.below(4));
    obs[i * 4 + ctx[i]] = 1.f;
    for (int a = 0; a < 5; ++a) mask[i * 5 + a] = problem.allowed[ctx[i] * 5 + a];
  }
  std::vector<int32_t> act(n);
  std::vector<float> probs(n * 5);
  policy->act(dense_batch(obs.data(), mask.data(), n, 4, 5), ActOptions{false, 99}, act.data(), probs.data());
  int optimal = 0;
  for (int i = 0; i < n; ++i) {
    ASSERT_NE(act[i], problem.trap[ctx[i]]) << "a masked action was sampled";
    ASSERT_EQ(probs[i * 5 + problem.trap[ctx[i]]], 0.f);
    optimal += act[i] == problem.optimal[ctx[i]];
  }
  // Seeded run: ~99.9% optimal; the bar is the issue's 95%.
  EXPECT_GE(optimal / double(n), 0.95) << optimal << " / " << n;
  EXPECT_GE(r.last.get("charts/optimal"), 0.95);
}

TEST(Train, SameSeedGivesIdenticalMetrics) {
  const std::string base = testing::temp_dir();
  train(kCartPole, base + "/a");
  train(kCartPole, base + "/b");
  const std::string a = read_file(base + "/a/metrics.jsonl");
  EXPECT_EQ(a, read_file(base + "/b/metrics.jsonl"));
  EXPECT_EQ(std::count(a.begin(), a.end(), '\n'), 10);
  const auto wa = weights(base + "/a"), wb = weights(base + "/b");
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_EQ(wa[i].data, wb[i].data) << wa[i].name;
  // A different seed gives different metrics.
  train(kCartPole, base + "/c", {}, {"seed=6"});
  EXPECT_NE(a, read_file(base + "/c/metrics.jsonl"));
}

TEST(Train, InterruptedAndResumedRunEndsWithIdenticalWeights) {
  const std::string base = testing::temp_dir();
  const TrainResult full = train(kCartPole, base + "/full");
  ASSERT_EQ(full.updates, 10);
  TrainOptions stop;
  stop.stop_after_updates = 3;  // as if SIGINT arrived during update 3
  const TrainResult part = train(kCartPole, base + "/part", stop);
  EXPECT_TRUE(part.interrupted);
  EXPECT_EQ(part.updates, 3);
  EXPECT_TRUE(fs::exists(base + "/part/checkpoints/update_00000003/state.json"));
  // Resume from the run's own config.yaml (no config file given), twice interrupted.
  TrainOptions resume;
  resume.resume = true;
  resume.stop_after_updates = 4;
  ConfigDoc doc = load_run_config(base + "/part", {});
  resume.run_dir = base + "/part";
  resume.console = false;
  const TrainResult mid = run_training(doc, resume);
  EXPECT_EQ(mid.updates, 7);
  resume.stop_after_updates = -1;
  const TrainResult done = run_training(load_run_config(base + "/part", {}), resume);
  EXPECT_FALSE(done.interrupted);
  EXPECT_EQ(done.updates, 10);
  EXPECT_TRUE(done.resume_exact);
  const auto wa = weights(base + "/full"), wb = weights(base + "/part");
  ASSERT_EQ(wa.size(), wb.size());
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_EQ(wa[i].data, wb[i].data) << wa[i].name;
  EXPECT_EQ(read_file(base + "/full/metrics.jsonl"), read_file(base + "/part/metrics.jsonl"));
}

// Issue 27 item 10: a resume whose newest checkpoint is truncated falls back to the previous
// complete one (kept by checkpoint_keep >= 2) and, training being deterministic, still ends exactly
// like an uninterrupted run; the damaged folder is kept aside. With no loadable checkpoint the error
// lists every reason and renames nothing.
TEST(Train, ResumeFallsBackFromATruncatedCheckpointToThePreviousOne) {
  const std::string base = testing::temp_dir();
  const TrainResult full = train(kCartPole, base + "/full");
  TrainOptions stop;
  stop.stop_after_updates = 4;  // checkpoints update_2 and update_4
  train(kCartPole, base + "/part", stop);
  const std::string ck = base + "/part/checkpoints/";
  ASSERT_TRUE(fs::exists(ck + "update_00000002/state.json"));
  const std::string opt = ck + "update_00000004/optimizer.pt";
  fs::resize_file(opt, fs::file_size(opt) / 2);
  TrainOptions resume;
  resume.resume = true;
  const TrainResult done = train(kCartPole, base + "/part", resume);
  EXPECT_EQ(done.updates, full.updates);
  EXPECT_TRUE(fs::exists(ck + "damaged-update_00000004/optimizer.pt"));
  const auto wa = weights(base + "/full"), wb = weights(base + "/part");
  ASSERT_EQ(wa.size(), wb.size());
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_EQ(wa[i].data, wb[i].data) << wa[i].name;
  EXPECT_EQ(read_file(base + "/full/metrics.jsonl"), read_file(base + "/part/metrics.jsonl"));

  // Every checkpoint damaged: one error naming each, and the folders stay where they are.
  stop.stop_after_updates = 4;
  train(kCartPole, base + "/broken", stop);
  const std::string bk = base + "/broken/checkpoints/";
  write_file_atomic(bk + "update_00000004/state.json", "{\"format\": \"conductor-ch");
  fs::resize_file(bk + "update_00000002/optimizer.pt", 10);
  try {
    train(kCartPole, base + "/broken", resume);
    FAIL() << "resumed from damaged checkpoints";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("no checkpoint can be loaded"), std::string::npos) << m;
    EXPECT_NE(m.find("update_00000004/state.json"), std::string::npos) << m;
    EXPECT_NE(m.find("update_00000002/optimizer.pt"), std::string::npos) << m;
  }
  EXPECT_TRUE(fs::exists(bk + "update_00000004"));
  EXPECT_FALSE(fs::exists(bk + "damaged-update_00000004"));
}

// Issue 27 item 11: the final evaluation's step cap covers one pass over the split whatever
// final_eval.episodes says. The issue's case: 80k test queries at max_steps 3 (a pass can take
// 240,003 steps) ran into the old cap of 1000 episodes x 3 x 4 + 100000 = 112,000.
TEST(FinalEval, StepCapCoversAWholePassOfALargeSplit) {
  EXPECT_EQ(final_eval_step_cap(1000, 3, 0), 112000);  // no pass: the episodes alone
  EXPECT_GE(final_eval_step_cap(1000, 3, 80000), (80000 + 1) * 3);
  EXPECT_GE(final_eval_step_cap(1, 1, 5000000), 5000001);
  EXPECT_GE(final_eval_step_cap(1000, 0, 200000), 200001);  // an env without a step limit counts one per episode
}

// Issue 27 item 11 end to end: a final evaluation on a test split of 50,973 queries (about 142,000
// steps at max_steps 3) completes; the old cap (final_eval.episodes 1: 100,012 steps) stopped it.
TEST(FinalEval, LargeSplitGetsItsWholePass) {
  const std::string dir = testing::temp_dir();
  SynthConfig sc;
  sc.queries = 52000;
  sc.seed = 1;
  sc.test_fraction = 0.98;
  sc.validation_fraction = 0.01;
  const TraceSet t = synthesize(sc, default_catalog());
  write_traces(t, dir + "/big.h5");
  const TrainResult r = train("seed: 1\n"
                              "env: {id: conductor, num_envs: 4, traces: " + dir + "/big.h5, split: train, max_steps: 3}\n"
                              "policy: {hidden: [16]}\n"
                              "ppo: {num_steps: 8, num_minibatches: 2}\n"
                              "total_steps: 32\n"
                              "log: {console: false, tensorboard: false}\n"
                              "final_eval: {enabled: true, episodes: 1, set: [env.split=test, env.mode=sequential]}\n",
                              dir + "/run");
  const double episodes = r.final_eval.get("eval/episodes");
  EXPECT_EQ(episodes, static_cast<double>(t.split_indices(Split::kTest).size()));
  EXPECT_EQ(r.final_eval.get("eval/expert_episodes"), episodes);
  EXPECT_GT(episodes * r.final_eval.get("eval/episodic_length"), 100012.0);  // past the old cap
  EXPECT_TRUE(fs::exists(dir + "/run/final_eval.json"));
}

TEST(Train, ResumeRefusesAnotherConfigOrVersion) {
  const std::string dir = testing::temp_dir() + "/run";
  TrainOptions stop;
  stop.stop_after_updates = 1;
  train(kCartPole, dir, stop);
  TrainOptions resume;
  resume.resume = true;
  try {
    train(kCartPole, dir, resume, {"ppo.learning_rate=0.001"});
    FAIL() << "resumed with a different config";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("different config"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("learning_rate"), std::string::npos) << e.what();
  }
  // Logging options are not part of the config identity: this resume is accepted.
  TrainOptions resume_one = resume;
  resume_one.stop_after_updates = 1;
  EXPECT_NO_THROW(train(kCartPole, dir, resume_one, {"log.console=true", "log.tensorboard=false"}));
  // Starting a new run over an existing one is refused too.
  EXPECT_THROW(train(kCartPole, dir), Error);
  // A run folder from another format version.
  std::string rj = read_file(dir + "/run.json");
  rj.replace(rj.find("\"version\": 1"), 12, "\"version\": 99");
  write_file_atomic(dir + "/run.json", rj);
  try {
    train(kCartPole, dir, resume);
    FAIL() << "resumed a run of another version";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("version 99"), std::string::npos) << e.what();
  }
}

TEST(Train, NanLossStopsWithoutWritingAPoisonedCheckpoint) {
  const std::string dir = testing::temp_dir() + "/run";
  TrainOptions opt;
  opt.poison_loss_at_update = 3;
  try {
    train(kCartPole, dir, opt, {"checkpoint_every=1"});
    FAIL() << "a NaN loss did not stop training";
  } catch (const TrainingDiverged& e) {
    EXPECT_NE(std::string(e.what()).find("update 3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("losses/loss"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::exists(dir + "/checkpoints/update_00000002/state.json"));
  EXPECT_FALSE(fs::exists(dir + "/checkpoints/update_00000003"));
  EXPECT_EQ(read_file(dir + "/checkpoints/latest"), "update_00000002\n");
  EXPECT_NO_THROW(load_policy(dir));
}

TEST(Train, GrpoImprovesTheBanditWithGroupAdvantages) {
  const std::string dir = testing::temp_dir() + "/run";
  const std::string yaml = R"(
seed: 2
env: {id: bandit, num_envs: 32, n_contexts: 4, n_actions: 5, masked_trap: true}
policy: {hidden: [32]}
algo: grpo
grpo: {group_size: 8, learning_rate: 0.01, update_epochs: 2, num_minibatches: 2, kl_coef: 0.001}
total_steps: 12288
log: {console: false}
)";
  const TrainResult r = train(yaml, dir);
  EXPECT_EQ(r.global_step, 12288);
  // Seeded run: ~0.99; a uniform policy over the 4 allowed actions scores 0.25.
  EXPECT_GE(r.last.get("charts/optimal"), 0.9);
  EXPECT_TRUE(r.last.has("losses/ref_kl"));
}

TEST(Train, BehaviourCloningWarmStartImitatesTheExpert) {
  const std::string dir = testing::temp_dir() + "/run";
  const TrainResult r = train(kCartPole, dir, {},
                              {"bc_warmstart.enabled=true", "bc_warmstart.samples=2048", "total_steps=128"});
  const std::string m = read_file(dir + "/metrics.jsonl");
  const auto first = m.substr(0, m.find('\n'));
  EXPECT_NE(first.find("\"bc/accuracy\""), std::string::npos) << first;
  EXPECT_NE(first.find("\"update\":0"), std::string::npos) << first;
  EXPECT_EQ(r.updates, 1);
}

// A warm start on the synthetic conductor world imitating `expert`, with PPO at a learning rate too
// small to move the imitated policy; `accuracy` gets the imitation accuracy of the first metrics row.
// `env_extra` adds keys to the env mapping (", key: value").
TrainResult warm_started(const std::string& expert, const std::string& dir, double* accuracy,
                         const std::string& env_extra = "") {
  const TrainResult r = train(R"(
seed: 4
env: {id: conductor, num_envs: 16, synthetic: {queries: 800, seed: 3}, split: train, max_steps: 3)" + env_extra + R"(}
policy: {hidden: [64, 64]}
ppo: {num_steps: 8, num_minibatches: 2, update_epochs: 1, learning_rate: 1.0e-7}
bc_warmstart: {enabled: true, expert: )" + expert + R"(, samples: 4096, epochs: 20, learning_rate: 0.003}
total_steps: 128
final_eval: {enabled: true, set: [env.mode=sequential]}
log: {console: false}
)",
                              dir);
  const std::string m = read_file(dir + "/metrics.jsonl");
  const auto first = m.substr(0, m.find('\n'));
  const auto at = first.find("\"bc/accuracy\":");
  EXPECT_NE(at, std::string::npos) << first;
  *accuracy = at == std::string::npos ? 0.0 : std::stod(first.substr(at + 14));
  return r;
}

// An environment without the expert (cartpole) is an error that names the key.
void expect_no_expert_error(const std::string& expert) {
  try {
    train(kCartPole, testing::temp_dir() + "/no-" + expert, {},
          {"bc_warmstart.enabled=true", "bc_warmstart.expert=" + expert, "total_steps=128"});
    ADD_FAILURE() << "cartpole has no " << expert << " expert";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bc_warmstart.expert: " + expert), std::string::npos) << e.what();
  }
}

TEST(Train, PerTaskAndRouterWarmStartsImitateTheirExperts) {
  // The per-task expert's action is a function of the task and of whether an answer is in hand, both
  // in the MLP's observation: imitation is near exact (seeded: 1.0), where one fixed worker for all
  // tasks would be the best a task-blind policy could copy. On the training split the imitated
  // per-task strategy beats the best single worker (seeded: 0.8689 vs 0.8513); imitating the best
  // fixed strategy would tie it.
  double per_task_accuracy = 0.0, router_accuracy = 0.0;
  const TrainResult t = warm_started("per_task", testing::temp_dir() + "/per_task", &per_task_accuracy);
  EXPECT_GT(t.final_eval.get("eval/episodic_return"), t.final_eval.get("eval/expert_episodic_return") + 0.01);
  EXPECT_GE(per_task_accuracy, 0.95);
  // The router expert's first call depends on each query's predicted quality (features), not only on
  // the task: imitation is close (seeded: 0.963) and worth more than one worker per task (seeded:
  // 0.8869 against 0.8689), so a router run that dispatched to the per-task expert would fail here.
  const TrainResult r = warm_started("router", testing::temp_dir() + "/router", &router_accuracy);
  EXPECT_GE(router_accuracy, 0.9);
  EXPECT_GT(r.final_eval.get("eval/episodic_return"), t.final_eval.get("eval/episodic_return") + 0.005);
  expect_no_expert_error("per_task");
  expect_no_expert_error("router");
}

// env.observe_predictions puts the router's inputs (predicted quality and cost per worker) and its
// choice in the observation: the imitation becomes nearly exact (seeded: 0.999 against 0.963 without
// them, same data and steps) and the imitated policy earns at least as much on the training split
// (seeded: 0.8950 against 0.8869). With the inputs alone and no choice it was 0.779: an argmax over
// near-equal probabilities is harder for a small MLP to learn than the features' linear boundaries.
TEST(Train, RouterImitationIsNearExactWithThePredictionsObserved) {
  double off = 0.0, on = 0.0;
  const TrainResult a = warm_started("router", testing::temp_dir() + "/router_off", &off);
  const TrainResult b = warm_started("router", testing::temp_dir() + "/router_on", &on, ", observe_predictions: true");
  EXPECT_GE(on, 0.99);
  EXPECT_GT(on, off + 0.01);
  EXPECT_GE(b.final_eval.get("eval/episodic_return"), a.final_eval.get("eval/episodic_return") - 0.002);
}

TEST(RunConfig, ChecksEveryKeyWithFileAndLine) {
  auto err = [](const std::string& yaml) -> std::string {
    try {
      check_run_config(ConfigDoc::load_string(yaml, "c.yaml"));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(err(kCartPole), "");
  EXPECT_NE(err("env: {id: cartpole}\nppo: {clip_coeff: 0.1}\n").find("c.yaml:2: unknown key 'ppo.clip_coeff'"),
            std::string::npos);
  EXPECT_NE(err("env: {id: nope}\n").find("unknown environment 'nope'"), std::string::npos);
  EXPECT_NE(err("env: {id: cartpole, num_envs: 3}\nppo: {num_minibatches: 5}\n")
                .find("c.yaml:2: key 'ppo.num_minibatches': the batch (env.num_envs * ppo.num_steps = 384) is not divisible"),
            std::string::npos);
  EXPECT_NE(err("env: {id: cartpole, max_episode_steps: 0}\n").find("max_episode_steps"), std::string::npos);
  EXPECT_NE(err("algo: sac\nenv: {id: cartpole}\n").find("expected one of bc, grpo, ppo"), std::string::npos);
  EXPECT_NE(err("seed: 1\n").find("'env.id'"), std::string::npos);
  const std::string unknown_expert = err("env: {id: cartpole}\nbc_warmstart: {expert: oracle}\n");
  EXPECT_NE(unknown_expert.find("bc_warmstart.expert"), std::string::npos) << unknown_expert;
  EXPECT_NE(unknown_expert.find("router"), std::string::npos) << unknown_expert;
}

}  // namespace
}  // namespace conductor
