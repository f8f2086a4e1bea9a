// Bad-input table of the command line (issue 27): `conductor` invocations with a wrong, missing or
// out-of-range flag, each with the exit status it must end with (CLI11's 105-109 for parse errors, 1
// for a refused input) and a substring of what it prints. Rows run six processes at a time (each
// start of the binary loads LibTorch: about half a second). Runs the real binary; a new flag gets a
// row here (docs/bad-inputs.md counts the rows). Also the two model-command items of the issue:
// `model init` names its --overwrite flag, `model logits` warns past max_position_embeddings.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "tests/test_util.h"
#include "tests/trainer/conductor_process.h"

namespace conductor {
namespace {

#ifdef CONDUCTOR_BIN

namespace fs = std::filesystem;
using testing::ConductorProcess;

struct Row {
  std::vector<std::string> args;  // "<dir>" stands for a scratch folder holding world.h5 and logs.h5
  std::string needle;
  int status = 1;  // conductor::Error; CLI11's parse errors have their own
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

class BadCliFlags : public ::testing::Test {
 protected:
  // One small world and its logs for the suite, in a folder of this process (CTest may run the
  // suite's tests in parallel processes).
  static void SetUpTestSuite() {
    const auto p = fs::path(CONDUCTOR_BINARY_DIR) / "test-tmp" / ("BadCliFlags-" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    dir_ = new std::string(p.string());
    run_ok({"traces", "synth", "--out", *dir_ + "/world.h5", "--queries", "300", "--seed", "1"});
    run_ok({"traces", "simulate-logs", "--traces", *dir_ + "/world.h5", "--out", *dir_ + "/logs.h5", "--n", "50"});
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
  }
  static void run_ok(const std::vector<std::string>& args) {
    ConductorProcess c(args, {}, *dir_ + "/setup.log");
    ASSERT_TRUE(testing::exited_with(c.wait(), 0)) << c.log();
  }
  static std::string* dir_;
};
std::string* BadCliFlags::dir_ = nullptr;

const std::vector<Row>& rows() {
  const std::string q = CONDUCTOR_SOURCE_DIR "/configs/quickstart.yaml";
  static const std::vector<Row> r = {
      // The program.
      {{}, "A subcommand is required", 106},
      {{"fly"}, "unknown command 'fly': expected one of bench, config, eval, eval-pool, export, model", 109},
      {{"--log-level", "warn"}, "A subcommand is required", 106},
      {{"traces", "fly"}, "unknown command 'fly' of 'traces': expected one of catalog, embed, fit-latency, import", 109},
      {{"--log-level", "loud", "traces", "info", "<dir>/world.h5"}, "--log-level: loud not in {", 105},
      // train.
      {{"train"}, "train: a config file is required (or --resume RUN_DIR)"},
      {{"train", "<dir>/absent.yaml"}, "cannot open '<dir>/absent.yaml'"},
      {{"train", q, "--out", "<dir>/r", "--threads", "0"}, "--threads: Value 0 not in range 1 to 1024", 105},
      {{"train", q, "--out", "<dir>/r", "--set", "bogus"}, "--set 'bogus': expected KEY.PATH=VALUE"},
      {{"train", q, "--out", "<dir>/r", "--set", "ppo.gamma=2"}, "(--set ppo.gamma): key 'ppo.gamma': value 2 out of range"},
      {{"train", q, "--out", "<dir>/r", "--set", "checkpoint_keep=1"}, "key 'checkpoint_keep': value 1 is too small"},
      {{"train", q, "--resume", "<dir>/a", "--out", "<dir>/b"}, "train: --out and --resume name different folders"},
      {{"train", "--resume", "<dir>/nowhere"}, "<dir>/nowhere: not a conductor run folder (no config.yaml)"},
      {{"train", q, "--out", "<dir>/r", "--world-size", "0"}, "--world-size: Value 0 not in range 1 to 65536", 105},
      {{"train", q, "--out", "<dir>/r", "--dist-timeout", "-1"}, "--dist-timeout: Value -1 not in range 0", 105},
      {{"train", q, "--out", "<dir>/r", "--set", "bc_warmstart.enabled=true", "--set", "bc_warmstart.logs=<dir>/absent.h5"},
       "cannot open trace file '<dir>/absent.h5': no such file"},
      // config check.
      {{"config", "check", "<dir>/absent.yaml"}, "cannot open '<dir>/absent.yaml'"},
      {{"config", "check", q, "--set", "env.max_steps=0"}, "key 'env.max_steps': value 0 out of range"},
      {{"config", "check"}, "file is required", 106},
      // eval and ope.
      {{"eval", "--report", "<dir>/rep"}, "--traces is required", 106},
      {{"eval", "--traces", "<dir>/world.h5", "--report", "<dir>/rep", "--cost-weight", "-3"},
       "--cost-weight: -3 is not a valid cost weight: expected a finite number >= 0"},
      {{"eval", "--traces", "<dir>/world.h5", "--report", "<dir>/rep", "--cost-weight", "nan"},
       "--cost-weight: nan is not a valid cost weight"},
      {{"eval", "--traces", "<dir>/world.h5", "--report", "<dir>/rep", "--cost-weight", "abc"},
       "Could not convert: --cost-weight = abc", 104},
      {{"eval", "--traces", "<dir>/world.h5", "--report", "<dir>/rep", "--cost-weights", "3,-30"},
       "--cost-weights: -30 is not a valid cost weight"},
      {{"eval", "--traces", "<dir>/world.h5", "--report", "<dir>/rep", "--cost-weights", "30"},
       "--cost-weights: no --checkpoint was given"},
      {{"eval", "--traces", "<dir>/world.h5", "--report", "<dir>/rep", "--split", "holdout"},
       "unknown split 'holdout': expected train, validation or test"},
      {{"eval", "--traces", "<dir>/world.h5", "--report", "<dir>/rep", "--aiq-bootstrap", "-1"},
       "--aiq-bootstrap: Value -1 not in range 0", 105},
      {{"eval", "--traces", "<dir>/world.h5", "--report", "<dir>/rep", "--threads", "0"},
       "--threads: Value 0 not in range 1 to 1024", 105},
      {{"eval", "--traces", "<dir>/world.h5", "--report", "<dir>/rep", "--checkpoint", "<dir>/x", "--label", "a", "--label", "b"},
       "--label was given 2 times for 1 checkpoints"},
      {{"eval", "--traces", "<dir>/world.h5", "--report", "<dir>/rep", "--checkpoint", "<dir>/nowhere"},
       "<dir>/nowhere: neither a checkpoint folder (no policy.json) nor a run folder (no checkpoints/latest)"},
      {{"eval", "--traces", "<dir>/absent.h5", "--report", "<dir>/rep"}, "cannot open trace file '<dir>/absent.h5': no such file"},
      {{"eval", "--traces", "<dir>/world.h5", "--report", "<dir>/rep", "--select-on", "test", "--split", "validation"},
       "--select-on test: candidates are chosen on a split carved from the training data"},
      {{"eval", "--traces", "<dir>/world.h5", "--report", "<dir>/rep", "--select-on", "holdout"},
       "--select-on: unknown split 'holdout': expected train, validation or test"},
      {{"eval", "--traces", "<dir>/world.h5", "--report", "<dir>/rep", "--select-on", "validation"},
       "--select-on validation: give --checkpoint and --label"},
      {{"eval", "--traces", "<dir>/world.h5", "--report", "<dir>/rep", "--scenario", "down"},
       "--scenario 'down': expected none, down:WORKER, down-announced:WORKER, slow:WORKER:FACTOR or price:WORKER:FACTOR"},
      {{"ope", "--checkpoint", "<dir>/x", "--report", "<dir>/rep"}, "--logs is required", 106},
      {{"ope", "--checkpoint", "<dir>/x", "--logs", "<dir>/logs.h5", "--report", "<dir>/rep", "--ci", "wilson"},
       "--ci 'wilson': expected bootstrap or normal"},
      {{"ope", "--checkpoint", "<dir>/x", "--logs", "<dir>/world.h5", "--report", "<dir>/rep"},
       "<dir>/world.h5: no /decisions: `conductor ope` evaluates bandit logs"},
      // traces.
      {{"traces", "info", "<dir>/absent.h5"}, "cannot open trace file '<dir>/absent.h5': no such file"},
      {{"traces", "info", "<dir>/world.h5", "--split", "holdout"}, "unknown split 'holdout'"},
      {{"traces", "synth", "--out", "<dir>/s.h5", "--queries", "0"}, "--queries: expected >= 1, got 0"},
      {{"traces", "synth", "--out", "<dir>/s.h5", "--test-fraction", "0.8", "--validation-fraction", "0.5"},
       "--test-fraction 0.8 and --validation-fraction 0.5"},
      {{"traces", "simulate-logs", "--traces", "<dir>/world.h5", "--out", "<dir>/l.h5", "--logging", "greedy"},
       "--logging 'greedy': expected 'uniform' or 'epsilon-greedy:<eps>' with eps in (0, 1]"},
      {{"traces", "simulate-logs", "--traces", "<dir>/world.h5", "--out", "<dir>/l.h5", "--split", "dev"},
       "unknown split 'dev'"},
      {{"traces", "import", "--format", "csv", "--input", "<dir>/x", "--out", "<dir>/i.h5"},
       "--format: csv not in {routerbench,llmrouter,jsonl}", 105},
      {{"traces", "embed", "<dir>/world.h5", "<dir>/e.h5"}, "--model is required", 106},
      {{"traces", "embed", "--model", "<dir>/nomodel", "<dir>/world.h5", "<dir>/e.h5"},
       "sentence encoder '<dir>/nomodel' is not a directory"},
      {{"traces", "embed", "--model", CONDUCTOR_SOURCE_DIR "/tests/llm/fixtures/bert_tiny", "<dir>/absent.h5", "<dir>/e.h5"},
       "cannot open trace file '<dir>/absent.h5': no such file"},
      // rewards fit (the text head's input).
      {{"rewards", "fit", "--traces", "<dir>/world.h5", "--report", "<dir>/rf", "--text-input", "embedding"},
       "--text-input embedding: the embedding is read by the text head: add --text"},
      {{"rewards", "fit", "--traces", "<dir>/world.h5", "--report", "<dir>/rf", "--text", "--text-input", "bert"},
       "--text-input: expected tfidf, embedding or both, got 'bert'"},
      // export and serve.
      {{"export", "--checkpoint", "<dir>/nowhere", "--out", "<dir>/e"}, "<dir>/nowhere: neither a checkpoint folder"},
      {{"export", "--out", "<dir>/e"}, "--checkpoint is required", 106},
      {{"serve", "--export", "<dir>/nowhere"}, "<dir>/nowhere: no such export directory"},
      {{"serve", "--export", "<dir>"}, "<dir>: not an export directory (no manifest.json)"},
      // model.
      {{"model", "init", "--preset", "enormous", "--out", "<dir>/m"}, "unknown model preset 'enormous' (known: tiny, "},
      {{"model", "init", "--preset", "tiny", "--out", "<dir>"}, "model init: '<dir>' already exists; pass --overwrite to replace it"},
      {{"model", "logits", "--checkpoint", "<dir>/nowhere", "--token-ids", "1,2", "--out", "<dir>/l.safetensors"}, "<dir>/nowhere"},
      {{"model", "logits", "--checkpoint", CONDUCTOR_SOURCE_DIR "/tests/llm/fixtures/tied_f32_single", "--token-ids",
        "1,x", "--out", "<dir>/l.safetensors"},
       "--token-ids: 'x' is not an integer (expected e.g. 1,2,3)"},
  };
  return r;
}

TEST_F(BadCliFlags, EveryRowExitsWithItsStatusAndSaysWhatIsWrong) {
  // No two rows write the same path (a refused start removes what it wrote), so they may run at once.
  constexpr std::size_t kAtOnce = 6;
  const auto& all = rows();
  for (std::size_t first = 0; first < all.size(); first += kAtOnce) {
    std::vector<std::unique_ptr<ConductorProcess>> running;
    std::vector<std::string> commands;
    for (std::size_t i = first; i < std::min(all.size(), first + kAtOnce); ++i) {
      std::vector<std::string> args;
      std::string cmd = "conductor";
      for (const auto& a : all[i].args) {
        args.push_back(replace_all(a, "<dir>", *dir_));
        cmd += " " + args.back();
      }
      running.push_back(std::make_unique<ConductorProcess>(args, std::vector<std::string>{},
                                                           *dir_ + "/row" + std::to_string(i) + ".log"));
      commands.push_back(cmd);
    }
    for (std::size_t k = 0; k < running.size(); ++k) {
      const Row& row = all[first + k];
      ConductorProcess& c = *running[k];
      const int status = c.wait();
      const std::string needle = replace_all(row.needle, "<dir>", *dir_);
      EXPECT_TRUE(testing::exited_with(status, row.status))
          << commands[k] << "\n  expected exit status " << row.status << "\n" << c.log();
      EXPECT_NE(c.log().find(needle), std::string::npos)
          << commands[k] << "\n  expected: " << needle << "\n  got:      " << c.log();
    }
  }
  EXPECT_FALSE(fs::exists(*dir_ + "/r"));  // no refused start left a run folder behind
  EXPECT_EQ(rows().size(), 58u);  // docs/bad-inputs.md
}

// Issue 27 item 9: the flag named in the message is the real one.
TEST_F(BadCliFlags, ModelInitIntoAnExistingFolderNamesTheOverwriteFlag) {
  ConductorProcess c({"model", "init", "--preset", "tiny", "--out", *dir_}, {}, *dir_ + "/init.log");
  EXPECT_TRUE(testing::exited_with(c.wait(), 1)) << c.log();
  EXPECT_NE(c.log().find("pass --overwrite to replace it"), std::string::npos) << c.log();
  EXPECT_EQ(c.log().find("pass overwrite"), std::string::npos) << c.log();
}

// Issue 27 item 8: more token ids than max_position_embeddings (256 in the fixture) run, with a
// warning that names the limit and the checkpoint; within the limit there is none.
TEST_F(BadCliFlags, ModelLogitsPastMaxPositionEmbeddingsWarns) {
  const std::string ck = CONDUCTOR_SOURCE_DIR "/tests/llm/fixtures/tied_f32_single";
  auto ids = [](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += (i ? "," : "") + std::to_string(3 + i % 100);
    return s;
  };
  ConductorProcess longer({"model", "logits", "--checkpoint", ck, "--token-ids", ids(257), "--out", *dir_ + "/l.safetensors"},
                          {}, *dir_ + "/logits-long.log");
  EXPECT_TRUE(testing::exited_with(longer.wait(), 0)) << longer.log();
  EXPECT_NE(longer.log().find("model logits: 257 token ids exceed max_position_embeddings 256 of " + ck + "/config.json"),
            std::string::npos)
      << longer.log();
  ConductorProcess within({"model", "logits", "--checkpoint", ck, "--token-ids", ids(256), "--out", *dir_ + "/l.safetensors"},
                          {}, *dir_ + "/logits-ok.log");
  EXPECT_TRUE(testing::exited_with(within.wait(), 0)) << within.log();
  EXPECT_EQ(within.log().find("max_position_embeddings"), std::string::npos) << within.log();
}

#endif  // CONDUCTOR_BIN

}  // namespace
}  // namespace conductor
