// Data-parallel training (trainer/distributed.h, docs/distributed.md).
//  - Rendezvous settings from flags, torchrun's and srun's variables.
//  - The Gloo process group's collectives, two ranks as two threads of this process on loopback.
//  - The real `conductor` binary as 2 ranks (fork + exec of CONDUCTOR_BIN with torchrun's
//    variables): weights equal within 1e-6 to a 1-rank run over the same episodes, a killed rank
//    makes the other exit non-zero naming it, SIGINT + resume reproduces the uninterrupted run,
//    a resume with another world size is refused; the transformer conductor with LoRA on 2 ranks
//    equals 1 rank over the same queries.
// No timing is asserted except the bound on a dead peer (exit within 60 s, a hang check).
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "artifacts/safetensors.h"
#include "core/atomic_file.h"
#include "core/json_util.h"
#include "policies/actor_critic.h"
#include "tests/test_util.h"
#include "tests/trainer/conductor_process.h"
#include "trainer/distributed.h"
#include "trainer/losses.h"

namespace conductor {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A loopback port nobody listens on now (bound to port 0, then released).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// ---------------------------------------------------------------------------------------------
// Settings

DistributedOptions resolve(const DistributedFlags& f, std::map<std::string, std::string> env) {
  return resolve_distributed_options(f, [env = std::move(env)](const char* n) -> const char* {
    static thread_local std::string v;
    const auto it = env.find(n);
    if (it == env.end()) return nullptr;
    v = it->second;
    return v.c_str();
  });
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(DistributedOptions, NothingSetIsOneProcess) {
  const auto o = resolve({}, {});
  EXPECT_EQ(o.world_size, 1);
  EXPECT_EQ(o.rank, 0);
  EXPECT_EQ(resolve({}, {{"WORLD_SIZE", "1"}, {"RANK", "0"}}).world_size, 1);
}

TEST(DistributedOptions, TorchrunVariables) {
  const auto o = resolve({}, {{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node7"},
                              {"MASTER_PORT", "29511"}, {"CONDUCTOR_DIST_TIMEOUT", "12.5"}});
  EXPECT_EQ(o.world_size, 4);
  EXPECT_EQ(o.rank, 3);
  EXPECT_EQ(o.local_rank, 1);
  EXPECT_EQ(o.master_addr, "node7");
  EXPECT_EQ(o.master_port, 29511);
  EXPECT_DOUBLE_EQ(o.timeout_s, 12.5);
  EXPECT_EQ(o.backend, "gloo");
}

TEST(DistributedOptions, SlurmVariablesWithDefaultPort) {
  const auto o = resolve({}, {{"SLURM_NTASKS", "8"}, {"SLURM_PROCID", "5"}, {"SLURM_LOCALID", "1"},
                              {"MASTER_ADDR", "10.0.0.1"}});
  EXPECT_EQ(o.world_size, 8);
  EXPECT_EQ(o.rank, 5);
  EXPECT_EQ(o.local_rank, 1);
  EXPECT_EQ(o.master_port, 29500);
}

TEST(DistributedOptions, FlagsWinOverVariables) {
  DistributedFlags f;
  f.world_size = 2;
  f.rank = 1;
  f.master = "[::1]:1234";
  f.timeout_s = 7;
  const auto o = resolve(f, {{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"MASTER_ADDR", "x"}, {"MASTER_PORT", "1"}});
  EXPECT_EQ(o.world_size, 2);
  EXPECT_EQ(o.rank, 1);
  EXPECT_EQ(o.master_addr, "::1");
  EXPECT_EQ(o.master_port, 1234);
  EXPECT_DOUBLE_EQ(o.timeout_s, 7);
}

TEST(DistributedOptions, ProblemsNameTheSetting) {
  EXPECT_NE(error_of([] { resolve({}, {{"WORLD_SIZE", "2"}, {"RANK", "0"}}); }).find("MASTER_ADDR and MASTER_PORT"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              resolve({}, {{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "5"}});
            }).find("rank 2 is outside 0..1"),
            std::string::npos);
  EXPECT_NE(error_of([] { resolve({}, {{"WORLD_SIZE", "two"}}); }).find("WORLD_SIZE: 'two' is not an integer"),
            std::string::npos);
  DistributedFlags f;
  f.world_size = 2;
  f.rank = 0;
  EXPECT_NE(error_of([&] { resolve(f, {}); }).find("needs --master HOST:PORT"), std::string::npos);
  f.master = "h:5";
  f.backend = "nccl";
  // Debian's CPU LibTorch: NCCL is not compiled in. A CUDA LibTorch (scripts/build.sh --torch pip) has
  // it, and on a machine without a GPU says that instead.
  const std::string nccl_error = error_of([&] { resolve(f, {}); });
  if (!nccl_compiled_in()) {
    EXPECT_NE(nccl_error.find("NCCL is absent from this build (LibTorch 1."), std::string::npos) << nccl_error;
  } else if (torch::cuda::device_count() == 0) {
    EXPECT_NE(nccl_error.find("no CUDA GPU is visible to this process (NCCL is compiled in: LibTorch 2."),
              std::string::npos) << nccl_error;
  }
  // (with a GPU visible resolving succeeds; NCCL collectives need a 2-GPU node: docs/distributed.md)
  // Even a single process names an unknown or unusable backend (it would otherwise be ignored).
  EXPECT_NE(error_of([] { resolve({}, {{"CONDUCTOR_DIST_BACKEND", "mpi"}}); }).find("'mpi': unknown (gloo | nccl)"),
            std::string::npos);
  DistributedFlags single;
  single.backend = "nccl";
  if (!nccl_error.empty()) {
    EXPECT_EQ(error_of([&] { resolve(single, {}); }), nccl_error);
  }
}

// ---------------------------------------------------------------------------------------------
// Collectives: two ranks as two threads of this process.

void two_ranks(double timeout_s, const std::function<void(ProcessGroup&)>& body) {
  const int port = free_port();
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      try {
        DistributedOptions o;
        o.world_size = 2;
        o.rank = r;
        o.master_addr = "127.0.0.1";
        o.master_port = port;
        o.timeout_s = timeout_s;
        o.source = "test";
        auto g = make_process_group(o);
        body(*g);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
}

TEST(GlooProcessGroup, AveragesGradientsSumsAndGathers) {
  std::vector<std::vector<float>> grads(2);
  std::vector<std::vector<double>> sums(2);
  std::vector<std::vector<std::string>> gathered(2);
  two_ranks(30, [&](ProcessGroup& g) {
    const int r = g.rank();
    EXPECT_EQ(g.world_size(), 2);
    // Two parameters of different shapes; rank 0's second one has no gradient (treated as zero).
    auto a = torch::zeros({2, 2}, torch::requires_grad());
    auto b = torch::zeros({3}, torch::requires_grad());
    a.mutable_grad() = torch::tensor({1.f, 2.f, 3.f, 4.f}).view({2, 2}) * (r + 1);
    if (r == 1) b.mutable_grad() = torch::tensor({10.f, 20.f, 30.f});
    g.average_gradients({a, b});
    auto flat = torch::cat({a.grad().reshape({-1}), b.grad()});
    grads[r].assign(flat.data_ptr<float>(), flat.data_ptr<float>() + flat.numel());
    std::vector<double> v{1.0 + r, 0.25 * r};
    g.sum(v);
    sums[r] = v;
    gathered[r] = g.gather_to_root(r == 0 ? std::string("zero") : std::string("one\0two", 7));
  });
  // Mean of (1,2,3,4) and (2,4,6,8); mean of (0,0,0) and (10,20,30).
  const std::vector<float> want{1.5f, 3.f, 4.5f, 6.f, 5.f, 10.f, 15.f};
  EXPECT_EQ(grads[0], want);
  EXPECT_EQ(grads[1], want);
  EXPECT_EQ(sums[0], (std::vector<double>{3.0, 0.25}));
  EXPECT_EQ(sums[1], (std::vector<double>{3.0, 0.25}));
  EXPECT_EQ(gathered[0], (std::vector<std::string>{"zero", std::string("one\0two", 7)}));
  EXPECT_TRUE(gathered[1].empty());
}

TEST(GlooProcessGroup, AdvantagesNormalizedOverBothRanksEqualTheSingleProcessFormula) {
  const auto all = torch::tensor({0.5f, -1.25f, 2.f, 3.5f, -0.75f, 0.f, 1.f, 4.25f});
  std::vector<torch::Tensor> out(2);
  two_ranks(30, [&](ProcessGroup& g) {
    out[g.rank()] = normalize_advantages_across(all.narrow(0, 4 * g.rank(), 4), g);
  });
  const auto want = normalize_advantages(all);
  const auto got = torch::cat({out[0], out[1]});
  EXPECT_LT((got - want).abs().max().item<float>(), 1e-6f) << got << want;
}

TEST(GlooProcessGroup, ARankThatNeverJoinsIsAnErrorAfterTheTimeout) {
  const int port = free_port();
  DistributedOptions o;
  o.world_size = 2;
  o.rank = 0;
  o.master_addr = "127.0.0.1";
  o.master_port = port;
  o.timeout_s = 1;
  o.source = "test";
  const std::string e = error_of([&] { make_process_group(o); });
  EXPECT_NE(e.find("rank 0 of 2: rendezvous at 127.0.0.1:" + std::to_string(port)), std::string::npos) << e;
}

// ---------------------------------------------------------------------------------------------
// The conductor binary as 2 ranks.

#ifdef CONDUCTOR_BIN

using Child = testing::ConductorProcess;
constexpr auto kDeadline = Child::kDeadline;
using testing::exited_with;

// CartPole, 8 sub-environments in all (4 per rank with 2 ranks), one minibatch per epoch (so the
// union of the ranks' minibatches is the single process's), 2 epochs, 4 updates.
std::string config_text(int num_envs, int64_t total_steps, int checkpoint_every) {
  return "seed: 11\n"
         "env: {id: cartpole, num_envs: " + std::to_string(num_envs) + "}\n"
         "policy: {hidden: [16, 16]}\n"
         "ppo: {num_steps: 32, num_minibatches: 1, update_epochs: 2}\n"
         "total_steps: " + std::to_string(total_steps) + "\n"
         "checkpoint_every: " + std::to_string(checkpoint_every) + "\n"
         "log: {console: false, tensorboard: false}\n";
}

std::vector<std::string> rank_env(int world, int rank, int port) {
  return {"WORLD_SIZE=" + std::to_string(world), "RANK=" + std::to_string(rank), "LOCAL_RANK=" + std::to_string(rank),
          "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port)};
}

// Runs `args` as `world` ranks (each with its own log, base/<tag>.<rank>.log); returns the statuses.
std::vector<int> run_ranks(int world, const std::vector<std::string>& args, const std::string& base,
                           const std::string& tag, std::vector<std::string>* logs = nullptr) {
  const int port = free_port();
  std::vector<std::unique_ptr<Child>> ranks;
  for (int r = 0; r < world; ++r)
    ranks.push_back(std::make_unique<Child>(args, rank_env(world, r, port),
                                            base + "/" + tag + "." + std::to_string(r) + ".log"));
  std::vector<int> st;
  for (auto& c : ranks) st.push_back(c->wait());
  if (logs)
    for (auto& c : ranks) logs->push_back(c->log());
  return st;
}

std::vector<NamedTensor> weights(const std::string& dir) {
  MlpSpec s;
  return load_mlp_tensors(dir, &s);
}

double max_abs_difference(const std::string& a, const std::string& b) {
  const auto wa = weights(a), wb = weights(b);
  EXPECT_EQ(wa.size(), wb.size());
  double d = 0;
  for (size_t i = 0; i < wa.size() && i < wb.size(); ++i) {
    EXPECT_EQ(wa[i].name, wb[i].name);
    EXPECT_EQ(wa[i].data.size(), wb[i].data.size()) << wa[i].name;
    for (size_t k = 0; k < wa[i].data.size() && k < wb[i].data.size(); ++k)
      d = std::max(d, std::abs(double(wa[i].data[k]) - double(wb[i].data[k])));
  }
  return d;
}

int64_t latest_update(const std::string& run) {
  long u = -1;
  try {
    if (std::sscanf(read_file(run + "/checkpoints/latest").c_str(), "update_%ld", &u) != 1) return -1;
  } catch (const Error&) {
    return -1;
  }
  return u;
}

TEST(DistributedTraining, TwoRanksEqualOneRankWithTwiceTheBatchOverTheSameEpisodes) {
  const std::string base = testing::temp_dir();
  write_file_atomic(base + "/two.yaml", config_text(4, 1024, 0));
  write_file_atomic(base + "/one.yaml", config_text(8, 1024, 0));
  std::vector<std::string> logs;
  const auto st = run_ranks(2, {"train", base + "/two.yaml", "--out", base + "/two", "--quiet"}, base, "two", &logs);
  ASSERT_TRUE(exited_with(st[0], 0) && exited_with(st[1], 0)) << logs[0] << "\n----\n" << logs[1];
  {
    Child c({"train", base + "/one.yaml", "--out", base + "/one", "--quiet", "--per-env-sampling"}, {},
            base + "/one.log");
    ASSERT_TRUE(exited_with(c.wait(), 0)) << c.log();
  }
  {  // the same single process with the default (row-order) sampling stream: other episodes
    Child c({"train", base + "/one.yaml", "--out", base + "/one-rows", "--quiet"}, {}, base + "/one-rows.log");
    ASSERT_TRUE(exited_with(c.wait(), 0)) << c.log();
  }
  // 4 updates of 2 * 4 * 32 steps; rank 0 alone wrote the run folder.
  const std::string m2 = read_file(base + "/two/metrics.jsonl"), m1 = read_file(base + "/one/metrics.jsonl");
  EXPECT_EQ(std::count(m2.begin(), m2.end(), '\n'), 4);
  EXPECT_NE(m2.find("\"global_step\":1024"), std::string::npos) << m2;
  EXPECT_EQ(latest_update(base + "/two"), 4);
  const double d = max_abs_difference(base + "/two", base + "/one");
  EXPECT_LE(d, 1e-6) << "2 ranks x 4 envs vs 1 rank x 8 envs";
  EXPECT_GT(max_abs_difference(base + "/two", base + "/one-rows"), 1e-3)
      << "the comparison above must be able to fail: other episodes give other weights";
  // The episode statistics are summed over the ranks: the same episodes, so the same counts.
  auto episodes = [](const std::string& m) {
    std::vector<int64_t> v;
    std::istringstream in(m);
    std::string line;
    while (std::getline(in, line)) v.push_back(parse_json(line, "metrics").at("charts/episodes").get<int64_t>());
    return v;
  };
  EXPECT_EQ(episodes(m2), episodes(m1));
}

// Long enough (1000 updates) that the kill always lands mid-run.
TEST(DistributedTraining, AKilledRankMakesTheOtherExitNamingIt) {
  const std::string base = testing::temp_dir();
  write_file_atomic(base + "/c.yaml", config_text(2, 2 * 2 * 32 * 1000, 1));
  for (int victim : {1, 0}) {
    SCOPED_TRACE("killed rank " + std::to_string(victim));
    const std::string run = base + "/run" + std::to_string(victim);
    const int port = free_port();
    const std::vector<std::string> args{"train", base + "/c.yaml", "--out", run, "--quiet", "--dist-timeout", "20"};
    Child r0(args, rank_env(2, 0, port), run + ".0.log"), r1(args, rank_env(2, 1, port), run + ".1.log");
    Child* ranks[2] = {&r0, &r1};
    const auto t0 = Clock::now();
    while (latest_update(run) < 2 && Clock::now() - t0 < kDeadline && r0.running() && r1.running())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_GE(latest_update(run), 2) << r0.log() << "\n----\n" << r1.log();
    ranks[victim]->signal(SIGKILL);
    Child& other = *ranks[1 - victim];
    const int st = other.wait(std::chrono::seconds(60));
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << "status " << st << "\n" << other.log();
    const std::string want = "rank " + std::to_string(1 - victim) + " of 2: ";
    EXPECT_NE(other.log().find(want), std::string::npos) << other.log();
    EXPECT_NE(other.log().find("rank " + std::to_string(victim) + " exited or stopped responding"), std::string::npos)
        << other.log();
    ranks[victim]->wait();
  }
}

TEST(DistributedTraining, ResumeAfterSigintReproducesTheUninterruptedRun) {
  const std::string base = testing::temp_dir();
  constexpr int64_t kUpdates = 60;
  write_file_atomic(base + "/c.yaml", config_text(2, 2 * 2 * 32 * kUpdates, 5));
  const std::string ref = base + "/ref", run = base + "/run";
  std::vector<std::string> logs;
  auto st = run_ranks(2, {"train", base + "/c.yaml", "--out", ref, "--quiet"}, base, "ref", &logs);
  ASSERT_TRUE(exited_with(st[0], 0) && exited_with(st[1], 0)) << logs[0] << "\n----\n" << logs[1];

  // SIGINT to rank 1 alone: the ranks agree to stop after the same update and checkpoint it.
  {
    const int port = free_port();
    const std::vector<std::string> args{"train", base + "/c.yaml", "--out", run, "--quiet"};
    Child r0(args, rank_env(2, 0, port), base + "/int.0.log"), r1(args, rank_env(2, 1, port), base + "/int.1.log");
    const auto t0 = Clock::now();
    while (latest_update(run) < 5 && Clock::now() - t0 < kDeadline && r0.running())
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    r1.signal(SIGINT);
    ASSERT_TRUE(exited_with(r0.wait(), 0)) << r0.log();
    ASSERT_TRUE(exited_with(r1.wait(), 0)) << r1.log();
    const int64_t u = latest_update(run);
    ASSERT_LT(u, kUpdates) << "the run ended before SIGINT arrived";
    EXPECT_NE(r0.log().find("interrupted after " + std::to_string(u) + " updates"), std::string::npos) << r0.log();
    // Every rank's environment state is in the checkpoint.
    char name[64];
    std::snprintf(name, sizeof name, "/checkpoints/update_%08ld", static_cast<long>(u));
    EXPECT_TRUE(fs::is_regular_file(run + name + "/env_state.bin"));
    EXPECT_TRUE(fs::is_regular_file(run + name + "/rank_1/env_state.bin"));
  }
  // Another world size is refused, naming both.
  {
    Child c({"train", "--resume", run, "--quiet"}, {}, base + "/one.log");
    EXPECT_FALSE(exited_with(c.wait(), 0)) << c.log();
    EXPECT_NE(c.log().find("written by a run of 2 processes; this run has 1"), std::string::npos) << c.log();
  }
  logs.clear();
  st = run_ranks(2, {"train", "--resume", run, "--quiet"}, base, "resume", &logs);
  ASSERT_TRUE(exited_with(st[0], 0) && exited_with(st[1], 0)) << logs[0] << "\n----\n" << logs[1];
  EXPECT_EQ(max_abs_difference(ref, run), 0.0);
  EXPECT_TRUE(read_file(ref + "/metrics.jsonl") == read_file(run + "/metrics.jsonl")) << "metrics.jsonl differs";
}

// The transformer conductor with LoRA through the same gradient path: only its trainable tensors
// (adapters, action rows, value head) are all-reduced. 2 ranks x 2 conductor sub-environments
// against 1 rank x 4 over the same queries (exact shards of the sampling stream), 2 PPO updates.
std::string transformer_config(int num_envs) {
  return "seed: 5\n"
         "env: {id: conductor, num_envs: " + std::to_string(num_envs) +
         ", synthetic: {queries: 120, seed: 2}, split: train, max_steps: 2,"
         " reward: {w_quality: 1.0, w_cost: 30.0}}\n"
         "policy: {kind: transformer, model: tiny, tokenizer: " + std::string(CONDUCTOR_SOURCE_DIR) +
         "/tests/tokenizer/fixture/tokenizer.json, max_prompt_tokens: 320, lora: {enabled: true, r: 2, alpha: 4}}\n"
         "algo: ppo\n"
         "ppo: {num_steps: 6, learning_rate: 0.001, num_minibatches: 1, update_epochs: 2}\n"
         "total_steps: 48\n"
         "checkpoint_every: 0\n"
         "log: {console: false, tensorboard: false}\n"
         "final_eval: {enabled: false}\n";
}

// Largest difference between two runs' saved transformer tensors (the last checkpoint's
// policy.safetensors: every trainable tensor), and how many tensors it compared.
double transformer_difference(const std::string& a, const std::string& b, int* compared) {
  auto file = [](const std::string& run) {
    std::string latest = read_file(run + "/checkpoints/latest");
    while (!latest.empty() && (latest.back() == '\n' || latest.back() == ' ')) latest.pop_back();
    return run + "/checkpoints/" + latest + "/policy.safetensors";
  };
  const safetensors::MappedFile fa(file(a)), fb(file(b));
  EXPECT_EQ(fa.names(), fb.names());
  double d = 0;
  *compared = 0;
  for (const auto& name : fa.names()) {
    if (!fb.has(name)) continue;
    const auto& va = fa.at(name);
    const auto& vb = fb.at(name);
    EXPECT_EQ(va.dtype, safetensors::DType::kF32) << name;
    EXPECT_EQ(va.shape, vb.shape) << name;
    if (va.nbytes != vb.nbytes || va.dtype != safetensors::DType::kF32) continue;
    const auto* pa = reinterpret_cast<const float*>(va.data);
    const auto* pb = reinterpret_cast<const float*>(vb.data);
    for (int64_t k = 0; k < va.numel(); ++k) d = std::max(d, std::abs(double(pa[k]) - double(pb[k])));
    ++*compared;
  }
  return d;
}

TEST(DistributedTraining, TransformerWithLoraOnTwoRanksEqualsOneRankOverTheSameQueries) {
  const std::string base = testing::temp_dir();
  write_file_atomic(base + "/two.yaml", transformer_config(2));
  write_file_atomic(base + "/one.yaml", transformer_config(4));
  std::vector<std::string> logs;
  const auto st = run_ranks(2, {"train", base + "/two.yaml", "--out", base + "/two", "--quiet"}, base, "two", &logs);
  ASSERT_TRUE(exited_with(st[0], 0) && exited_with(st[1], 0)) << logs[0] << "\n----\n" << logs[1];
  {
    Child c({"train", base + "/one.yaml", "--out", base + "/one", "--quiet", "--per-env-sampling"}, {},
            base + "/one.log");
    ASSERT_TRUE(exited_with(c.wait(), 0)) << c.log();
  }
  {  // the row-order sampling stream: other queries per sub-environment
    Child c({"train", base + "/one.yaml", "--out", base + "/one-rows", "--quiet"}, {}, base + "/one-rows.log");
    ASSERT_TRUE(exited_with(c.wait(), 0)) << c.log();
  }
  EXPECT_EQ(latest_update(base + "/two"), 2);
  int n = 0;
  const double d = transformer_difference(base + "/two", base + "/one", &n);
  EXPECT_GE(n, 3) << "adapters, action rows and value head";
  EXPECT_LE(d, 1e-6) << "2 ranks x 2 envs vs 1 rank x 4 envs";
  EXPECT_GT(transformer_difference(base + "/two", base + "/one-rows", &n), 1e-4)
      << "the comparison above must be able to fail: other queries give other weights";
}

#endif  // CONDUCTOR_BIN

}  // namespace
}  // namespace conductor
