// The real `conductor` binary as a child process of a test (signal, resume and multi-rank tests):
// stdout and stderr in a log file, extra environment variables, killed and reaped if still running
// when destroyed (a failed assertion). Needs CONDUCTOR_BIN (tests/suites.cmake sets it).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"

extern char** environ;

namespace conductor::testing {

class ConductorProcess {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kDeadline{120};  // a hang, not a slow machine

  // `env`: "NAME=VALUE" entries added to this process's environment, from which the process-group
  // variables (WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT, SLURM_*) are removed first.
  ConductorProcess(const std::vector<std::string>& args, const std::vector<std::string>& env, std::string log_path)
      : log_path_(std::move(log_path)) {
    // Everything the child needs is prepared before fork: it only calls async-signal-safe functions.
    std::vector<std::string> all = {CONDUCTOR_BIN};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) {
      const std::string kv = *e;
      const std::string name = kv.substr(0, kv.find('='));
      if (name != "WORLD_SIZE" && name != "RANK" && name != "MASTER_ADDR" && name != "MASTER_PORT" &&
          name.rfind("SLURM_", 0) != 0)
        envs.push_back(kv);
    }
    envs.insert(envs.end(), env.begin(), env.end());
    std::vector<char*> envp;
    for (auto& e : envs) envp.push_back(e.data());
    envp.push_back(nullptr);
    const char* log = log_path_.c_str();
    sigset_t none;
    sigemptyset(&none);
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = ::open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) _exit(126);
      dup2(fd, 1);
      dup2(fd, 2);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
  }
  ~ConductorProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  ConductorProcess(const ConductorProcess&) = delete;
  ConductorProcess& operator=(const ConductorProcess&) = delete;

  bool started() const { return pid_ > 0; }
  bool running() {
    if (reaped_) return false;
    if (waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
    return !reaped_;
  }
  void signal(int sig) const { ::kill(pid_, sig); }
  // Waits for the exit (SIGKILL after `deadline`); returns the waitpid status.
  int wait(std::chrono::seconds deadline = kDeadline) {
    const auto t0 = Clock::now();
    bool killed = false;
    while (running()) {
      if (!killed && Clock::now() - t0 > deadline) {
        killed = true;
        ADD_FAILURE() << "conductor did not exit within " << deadline.count() << " s; killing it. Log:\n" << log();
        ::kill(pid_, SIGKILL);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return status_;
  }
  std::string log() const {
    try {
      return read_file(log_path_);
    } catch (const Error&) {
      return "";
    }
  }
  // Polls (1 ms) until pred() holds; false when the process exits first or the deadline passes.
  bool wait_until(const std::function<bool()>& pred) {
    const auto t0 = Clock::now();
    while (!pred()) {
      if (!running() || Clock::now() - t0 > kDeadline) return pred();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }

 private:
  std::string log_path_;
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
};

inline bool exited_with(int status, int code) { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
inline bool killed_by(int status, int sig) { return WIFSIGNALED(status) && WTERMSIG(status) == sig; }

}  // namespace conductor::testing
