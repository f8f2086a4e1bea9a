// Warm start from logged decisions (bc_warmstart.logs, trainer/logged_bc.cpp).
//
// Known answer: a synthetic world (2,000 queries, 10 workers) and 4,000 uniform-random logged first
// calls on its train split. Imitating the logs unweighted copies the uniform logger; weighting by
// outcome must give a policy at least as good as the best single worker on the validation split,
// far above the untrained policy and the unweighted imitation. The world and the logs are made by
// the real binary (`traces synth`, `traces simulate-logs`); training runs in-process with a zero RL
// learning rate so the final evaluation scores the warm start alone.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include <unistd.h>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/config.h"
#include "tests/test_util.h"
#include "tests/trainer/conductor_process.h"
#include "tests/trainer/train_fixtures.h"
#include "traces/store.h"

namespace conductor {
namespace {

#ifdef CONDUCTOR_BIN

using Child = testing::ConductorProcess;
using testing::exited_with;

class LoggedWarmStart : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // One world and one log file for the suite (temp_dir() needs a running test). CTest runs every
    // test of the suite in its own process, possibly at the same time: one directory per process,
    // or one process's remove_all pulls the files from under another.
    const auto p = std::filesystem::path(CONDUCTOR_BINARY_DIR) / "test-tmp" /
                   ("LoggedWarmStart-" + std::to_string(static_cast<long>(::getpid())));
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
    dir_ = new std::string(p.string());
    run({"traces", "synth", "--queries", "2000", "--seed", "3", "--out", *dir_ + "/world.h5"}, "synth");
    run({"traces", "simulate-logs", "--traces", *dir_ + "/world.h5", "--logging", "uniform", "--split", "train", "--n",
         "4000", "--seed", "1", "--out", *dir_ + "/logs.h5"},
        "logs");
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    std::filesystem::remove_all(*dir_, ec);
    delete dir_;
  }
  static void run(const std::vector<std::string>& args, const std::string& tag) {
    Child c(args, {}, *dir_ + "/" + tag + ".log");
    ASSERT_TRUE(exited_with(c.wait(), 0)) << c.log();
  }

  static std::string config(const std::string& bc) {
    return "seed: 1\n"
           "env: {id: conductor, num_envs: 16, traces: " + *dir_ + "/world.h5, split: train, max_steps: 1,"
           " reward: {w_quality: 1.0, w_cost: 30.0, w_latency: 0.0}}\n"
           "policy: {kind: mlp, hidden: [64, 64], activation: tanh}\n"
           "algo: ppo\n"
           "ppo: {num_steps: 8, learning_rate: 0.0}\n"
           "total_steps: 128\n"
           "bc_warmstart: " + bc + "\n"
           "log: {tensorboard: false, console: false}\n"
           "final_eval: {enabled: true, set: [env.split=validation, env.mode=sequential]}\n";
  }
  // Trains; returns the greedy validation return, and the warm start's metrics row in *bc_row.
  static double train(const std::string& bc, const std::string& name, json* bc_row = nullptr,
                      double* best_fixed = nullptr) {
    const auto r = testing::train_quietly(ConfigDoc::load_string(config(bc), name + ".yaml"), *dir_ + "/" + name);
    if (bc_row) *bc_row = testing::metric_rows(*dir_ + "/" + name).front();
    if (best_fixed) *best_fixed = r.final_eval.get("eval/expert_episodic_return");
    return r.final_eval.get("eval/episodic_return");
  }
  static std::string error_of(const std::string& bc, const std::string& name) {
    try {
      train(bc, name);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  static std::string* dir_;
};
std::string* LoggedWarmStart::dir_ = nullptr;

TEST_F(LoggedWarmStart, OutcomeWeightingBeatsTheLoggerAndMatchesTheBestWorker) {
  json row;
  double best_fixed = 0;
  const double weighted = train("{enabled: true, logs: " + *dir_ + "/logs.h5, epochs: 20, learning_rate: 0.003}",
                                "advantage", &row, &best_fixed);
  const double uniform = train(
      "{enabled: true, logs: " + *dir_ + "/logs.h5, epochs: 20, learning_rate: 0.003, weighting: uniform}", "uniform");
  const double none = train("{enabled: false}", "none");
  EXPECT_EQ(row["update"].get<int>(), 0);
  EXPECT_EQ(row["bc/logged_decisions"].get<double>(), 4000);
  EXPECT_EQ(row["bc/samples"].get<double>(), 4000);
  EXPECT_EQ(row["bc/unlabelled_decisions"].get<double>(), 0);
  EXPECT_GT(row["bc/weight_effective_sample_size"].get<double>(), 100);
  // Measured: weighted 0.6954, best fixed worker 0.6485, uniform imitation 0.6170, untrained 0.4047.
  EXPECT_GE(weighted, best_fixed - 0.005) << "uniform " << uniform << ", untrained " << none;
  EXPECT_GT(weighted, uniform + 0.02);
  EXPECT_GT(weighted, none + 0.1);
}

TEST_F(LoggedWarmStart, UnlabelledDecisionsAreLeftOutAndCounted) {
  TraceSet logs = read_traces(*dir_ + "/logs.h5");
  for (std::size_t i = 0; i < 100; ++i) logs.decisions.quality[i * 7] = std::nanf("");
  write_traces(logs, *dir_ + "/logs-partial.h5");
  json row;
  train("{enabled: true, logs: " + *dir_ + "/logs-partial.h5, epochs: 1}", "partial", &row);
  EXPECT_EQ(row["bc/unlabelled_decisions"].get<double>(), 100);
  EXPECT_EQ(row["bc/samples"].get<double>(), 3900);
  for (auto& q : logs.decisions.quality) q = std::nanf("");
  write_traces(logs, *dir_ + "/logs-none.h5");
  EXPECT_NE(error_of("{enabled: true, logs: " + *dir_ + "/logs-none.h5}", "none-labelled").find("has a quality label"),
            std::string::npos);
}

TEST_F(LoggedWarmStart, BadInputsNameWhatIsWrong) {
  // Logs of a query env.traces lacks.
  TraceSet logs = read_traces(*dir_ + "/logs.h5");
  logs.query_id[static_cast<std::size_t>(logs.decisions.query[0])] = "not-in-the-world";
  write_traces(logs, *dir_ + "/logs-foreign.h5");
  const std::string e1 = error_of("{enabled: true, logs: " + *dir_ + "/logs-foreign.h5}", "foreign");
  EXPECT_NE(e1.find("/decisions/query[0] is query 'not-in-the-world'"), std::string::npos) << e1;
  EXPECT_NE(e1.find("must hold the logged queries"), std::string::npos) << e1;
  // A trace file without decisions.
  const std::string e2 = error_of("{enabled: true, logs: " + *dir_ + "/world.h5}", "nodecisions");
  EXPECT_NE(e2.find("has no /decisions"), std::string::npos) << e2;
  // A missing file names it.
  const std::string e3 = error_of("{enabled: true, logs: " + *dir_ + "/absent.h5}", "absent");
  EXPECT_NE(e3.find("absent.h5"), std::string::npos) << e3;
  // Config mistakes name the key.
  const std::string e4 = error_of("{enabled: false, logs: " + *dir_ + "/logs.h5}", "disabled");
  EXPECT_NE(e4.find("bc_warmstart.logs"), std::string::npos) << e4;
  EXPECT_NE(e4.find("enabled is false"), std::string::npos) << e4;
  const std::string e5 = error_of("{enabled: true, logs: " + *dir_ + "/logs.h5, weighting: best}", "weighting");
  EXPECT_NE(e5.find("weighting"), std::string::npos) << e5;
}

// Issue 27 item 1: the run folder's config.yaml records the whole bc_warmstart section (it was saved
// as `bc_warmstart: {}` whenever logs were given), so such a run can be resumed.
TEST_F(LoggedWarmStart, RunWarmStartedFromLogsCanBeResumed) {
  const std::string run = *dir_ + "/resumable";
  ConfigDoc doc = ConfigDoc::load_string(config("{enabled: true, logs: " + *dir_ + "/logs.h5, epochs: 1}"), "r.yaml");
  doc.apply_override("total_steps=256");
  doc.apply_override("final_eval.enabled=false");
  const TrainResult first = testing::train_quietly(doc, run, /*stop_after=*/1);
  ASSERT_TRUE(first.interrupted);
  const std::string saved = read_file(run + "/config.yaml");
  EXPECT_EQ(saved.find("bc_warmstart: {}"), std::string::npos) << saved;
  EXPECT_NE(saved.find("logs: " + *dir_ + "/logs.h5"), std::string::npos) << saved;
  const TrainResult resumed = testing::train_quietly(load_run_config(run, {}), run, -1, /*resume=*/true);
  EXPECT_EQ(resumed.global_step, 256);
  EXPECT_FALSE(resumed.interrupted);
}

// Issue 27 item 6: a start that fails before its first checkpoint (a missing or non-HDF5
// bc_warmstart.logs) removes what it wrote: the same command then works once the input is fixed,
// and files that were in the folder before stay.
TEST_F(LoggedWarmStart, FailedStartLeavesNoHalfMadeRunFolder) {
  const std::string run = *dir_ + "/retry";
  const std::string e1 = error_of("{enabled: true, logs: " + *dir_ + "/absent.h5}", "retry");
  EXPECT_NE(e1.find("absent.h5"), std::string::npos) << e1;
  EXPECT_FALSE(std::filesystem::exists(run));
  std::filesystem::create_directories(run);
  write_file_atomic(run + "/notes.txt", "mine\n");
  write_file_atomic(*dir_ + "/not-hdf5.h5", "plain text\n");
  const std::string e2 = error_of("{enabled: true, logs: " + *dir_ + "/not-hdf5.h5}", "retry");
  EXPECT_NE(e2.find("not-hdf5.h5"), std::string::npos) << e2;
  EXPECT_FALSE(std::filesystem::exists(run + "/run.json"));
  EXPECT_FALSE(std::filesystem::exists(run + "/config.yaml"));
  EXPECT_FALSE(std::filesystem::exists(run + "/metrics.jsonl"));
  EXPECT_EQ(read_file(run + "/notes.txt"), "mine\n");
  EXPECT_EQ(error_of("{enabled: true, logs: " + *dir_ + "/logs.h5, epochs: 1}", "retry"), "");
  EXPECT_TRUE(std::filesystem::exists(run + "/checkpoints/latest"));
}

#endif  // CONDUCTOR_BIN

}  // namespace
}  // namespace conductor
