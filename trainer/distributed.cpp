#include "trainer/distributed.h"

#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1  // Debian's libtorch_cpu is built with Gloo; the header hides it otherwise
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef CONDUCTOR_WITH_NCCL  // set by trainer/CMakeLists.txt when LibTorch is a CUDA build
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

#include "core/log.h"
#include "llm/torch_compat.h"

namespace conductor {

namespace {

using Clock = std::chrono::steady_clock;

int parse_int(const std::string& text, const std::string& what) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < INT32_MIN || v > INT32_MAX)
    fail(what, ": '", text, "' is not an integer");
  return static_cast<int>(v);
}

// HOST:PORT (the host may be an IPv6 literal in brackets).
void split_master(const std::string& hp, const std::string& what, std::string& host, int& port) {
  const auto colon = hp.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == hp.size())
    fail(what, ": '", hp, "' is not HOST:PORT");
  host = hp.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  port = parse_int(hp.substr(colon + 1), what + " port");
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// The c10d process group: Gloo (collectives on the CPU) or, in a CUDA build, NCCL (collectives on
// this rank's GPU, cuda:LOCAL_RANK, which is also made the current device so `device: cuda` in a
// policy lands there). Every collective runs through run(), which turns a failure (a peer's
// connection closed, or nothing within the timeout) into a DistributedError that names the ranks
// that did not report the failure themselves: each surviving rank marks itself in the store,
// waits briefly for the others to do the same, and lists the ranks still unmarked.
class C10dProcessGroup final : public ProcessGroup {
 public:
  explicit C10dProcessGroup(const DistributedOptions& o) : o_(o) {
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000.0));
    const auto t0 = Clock::now();
    try {
      c10d::TCPStoreOptions so;
      so.port = static_cast<std::uint16_t>(o.master_port);
      so.isServer = o.rank == 0;
      so.numWorkers = static_cast<std::size_t>(o.world_size);
      so.waitWorkers = true;
      so.timeout = timeout;
      store_ = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
#ifdef CONDUCTOR_WITH_NCCL
      if (o.backend == "nccl") {
        const int gpus = static_cast<int>(c10::cuda::device_count());
        if (o.local_rank < 0 || o.local_rank >= gpus)
          fail("rank ", o.rank, ": LOCAL_RANK ", o.local_rank, " has no GPU (this node has ", gpus,
               "; start at most one rank per GPU)");
        c10::cuda::set_device(static_cast<c10::DeviceIndex>(o.local_rank));
        comm_device_ = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(o.local_rank));
        // Without blocking wait a collective with a dead peer waits forever; with it, the
        // process-group timeout applies as it does for Gloo (the user's setting wins).
        setenv("NCCL_BLOCKING_WAIT", "1", 0);
        auto nopts = c10d::ProcessGroupNCCL::Options::create();
        nopts->timeout = timeout;
        pg_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store_, o.rank, o.world_size, nopts);
      }
#endif
      if (o.backend == "gloo") {
        auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
        if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
          opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
        else if (is_loopback(o.master_addr))
          opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        else
          opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        opts->threads = 1;
        pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, o.rank, o.world_size, opts);
      }
      if (!pg_) fail("distributed backend '", o.backend, "' is not in this build");
    } catch (const std::exception& e) {
      throw DistributedError("rank " + std::to_string(o.rank) + " of " + std::to_string(o.world_size) +
                             ": rendezvous at " + o.master_addr + ":" + std::to_string(o.master_port) + " (" +
                             o.source + ") failed after " + seconds_since(t0) + " s: " + first_line(e.what()) +
                             " (every rank must start within the process-group timeout of " +
                             fmt_seconds(o.timeout_s) + " s; --dist-timeout)");
    }
    log_info("rank ", o.rank, " of ", o.world_size, " joined the process group at ", o.master_addr, ":",
             o.master_port, " (", o.backend, ", ", o.source, ")");
  }

  int rank() const override { return o_.rank; }
  int world_size() const override { return o_.world_size; }

  // One all-reduce per dtype over a flat bucket of every gradient (one in practice: float32).
  void average_gradients(const std::vector<torch::Tensor>& params) override {
    std::map<c10::ScalarType, std::vector<std::size_t>> by_dtype;
    for (std::size_t i = 0; i < params.size(); ++i) by_dtype[params[i].scalar_type()].push_back(i);
    for (const auto& [dtype, members] : by_dtype) {
      std::vector<torch::Tensor> flat;
      flat.reserve(members.size());
      for (std::size_t i : members) {
        const auto& p = params[i];
        flat.push_back(p.grad().defined() ? p.grad().detach().reshape({-1}) : torch::zeros({p.numel()}, p.options()));
      }
      std::vector<torch::Tensor> bucket{torch::cat(flat).to(comm_device_)};
      run("gradient all-reduce", [&] { pg_->allreduce(bucket)->wait(); });
      bucket[0].div_(o_.world_size);
      if (bucket[0].device() != params[members.front()].device()) bucket[0] = bucket[0].to(params[members.front()].device());
      int64_t offset = 0;
      for (std::size_t i : members) {
        const auto& p = params[i];
        auto slice = bucket[0].narrow(0, offset, p.numel()).view(p.sizes());
        offset += p.numel();
        torch::NoGradGuard ng;
        if (p.grad().defined())
          p.mutable_grad().copy_(slice);
        else
          p.mutable_grad() = slice.clone();
      }
    }
  }

  void sum(std::vector<double>& values) override {
    if (values.empty()) return;
    std::vector<torch::Tensor> t{torch::from_blob(values.data(), {static_cast<int64_t>(values.size())},
                                                  torch::kFloat64)
                                     .to(comm_device_, /*non_blocking=*/false, /*copy=*/true)};
    run("statistics all-reduce", [&] { pg_->allreduce(t)->wait(); });
    t[0] = t[0].cpu();
    std::memcpy(values.data(), t[0].data_ptr<double>(), values.size() * sizeof(double));
  }

  // Two all-gathers: the sizes, then the blobs padded to the largest.
  std::vector<std::string> gather_to_root(const std::string& blob) override {
    const int W = o_.world_size;
    const auto on = torch::TensorOptions().device(comm_device_);
    std::vector<torch::Tensor> in{torch::tensor({static_cast<int64_t>(blob.size())}, torch::kInt64).to(comm_device_)};
    std::vector<std::vector<torch::Tensor>> out(1);
    for (int r = 0; r < W; ++r) out[0].push_back(torch::zeros({1}, on.dtype(torch::kInt64)));
    run("checkpoint gather (sizes)", [&] { pg_->allgather(out, in)->wait(); });
    int64_t max_size = 1;
    std::vector<int64_t> sizes(W);
    for (int r = 0; r < W; ++r) max_size = std::max(max_size, sizes[r] = out[0][r].item<int64_t>());
    std::vector<torch::Tensor> data{torch::zeros({max_size}, torch::kUInt8)};
    std::memcpy(data[0].data_ptr<uint8_t>(), blob.data(), blob.size());
    data[0] = data[0].to(comm_device_);
    std::vector<std::vector<torch::Tensor>> all(1);
    for (int r = 0; r < W; ++r) all[0].push_back(torch::empty({max_size}, on.dtype(torch::kUInt8)));
    run("checkpoint gather", [&] { pg_->allgather(all, data)->wait(); });
    std::vector<std::string> blobs;
    if (o_.rank != 0) return blobs;
    for (int r = 0; r < W; ++r) all[0][r] = all[0][r].cpu();
    for (int r = 0; r < W; ++r)
      blobs.emplace_back(reinterpret_cast<const char*>(all[0][r].data_ptr<uint8_t>()), static_cast<std::size_t>(sizes[r]));
    return blobs;
  }

 private:
  static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }
  static std::string fmt_seconds(double s) {
    char b[32];
    std::snprintf(b, sizeof b, "%.3g", s);
    return b;
  }
  static std::string seconds_since(Clock::time_point t0) {
    return fmt_seconds(std::chrono::duration<double>(Clock::now() - t0).count());
  }

  template <class F>
  void run(const char* what, F&& f) {
    const auto t0 = Clock::now();
    try {
      f();
    } catch (const std::exception& e) {
      const std::string cause = first_line(e.what()), took = seconds_since(t0);
      throw DistributedError("rank " + std::to_string(o_.rank) + " of " + std::to_string(o_.world_size) + ": " +
                             what + " failed after " + took + " s: " + cause + "; " + suspects() +
                             " (process-group timeout " + fmt_seconds(o_.timeout_s) + " s, --dist-timeout)");
    }
  }

  // Which ranks stopped answering: the ones that did not mark themselves as failed within ~2 s.
  std::string suspects() {
    const int W = o_.world_size;
    auto key = [](int r) { return "conductor/failed/" + std::to_string(r); };
    try {
      store_->setTimeout(std::chrono::seconds(2));
      store_->set(key(o_.rank), std::vector<uint8_t>{1});
      std::vector<int> silent;
      for (int attempt = 0; attempt < 20; ++attempt) {
        silent.clear();
        for (int r = 0; r < W; ++r)
          if (r != o_.rank && !store_->check({key(r)})) silent.push_back(r);
        if (silent.empty()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (silent.empty()) return "every rank reported the failure (a network error?)";
      std::string list;
      for (int r : silent) list += (list.empty() ? "" : ", ") + std::to_string(r);
      return (silent.size() == 1 ? "rank " : "ranks ") + list + " exited or stopped responding";
    } catch (const std::exception&) {
      return "rank 0 exited or stopped responding (the rendezvous store it hosts at " + o_.master_addr + ":" +
             std::to_string(o_.master_port) + " no longer answers)";
    }
  }

  DistributedOptions o_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<compat::C10dBackend> pg_;
  torch::Device comm_device_{torch::kCPU};  // where collectives' tensors live (cuda:LOCAL_RANK for NCCL)
};

}  // namespace

bool nccl_compiled_in() {
#ifdef CONDUCTOR_WITH_NCCL
  return true;
#else
  return false;
#endif
}

std::string torch_build_description() { return compat::torch_build_description(); }

DistributedOptions resolve_distributed_options(const DistributedFlags& flags,
                                               const std::function<const char*(const char*)>& getenv) {
  auto env = [&](const char* name) -> std::string {
    const char* v = getenv(name);
    return v ? std::string(v) : std::string();
  };
  DistributedOptions o;
  // The backend first: a bad or unusable one is an error even for a single process, which never
  // builds a process group (the user asked for something this build or machine cannot do).
  o.backend = !flags.backend.empty() ? flags.backend
              : !env("CONDUCTOR_DIST_BACKEND").empty() ? env("CONDUCTOR_DIST_BACKEND")
                                                        : std::string("gloo");
  if (o.backend != "gloo" && o.backend != "nccl") fail("distributed backend '", o.backend, "': unknown (gloo | nccl)");
  if (o.backend == "nccl") {
    if (!nccl_compiled_in())
      fail("distributed backend 'nccl': NCCL is absent from this build (", torch_build_description(),
           "); use gloo (the default), which runs every collective on the CPU, or build against a CUDA "
           "LibTorch: bash scripts/build.sh --torch pip (docs/distributed.md)");
    if (torch::cuda::device_count() == 0) {
      const std::string visible = env("CUDA_VISIBLE_DEVICES");
      fail("distributed backend 'nccl': no CUDA GPU is visible to this process (NCCL is compiled in: ",
           torch_build_description(), "; CUDA_VISIBLE_DEVICES=", visible.empty() ? "<unset>" : "'" + visible + "'",
           "); run on a GPU machine, or use gloo for CPU training");
    }
  }
  if (flags.world_size > 0) {
    o.source = "--world-size/--rank/--master";
    o.world_size = flags.world_size;
    o.rank = flags.rank;
    if (o.world_size > 1) {
      if (flags.rank < 0) fail("train: --world-size ", flags.world_size, " needs --rank R (0 <= R < ", flags.world_size, ")");
      if (flags.master.empty()) fail("train: --world-size ", flags.world_size, " needs --master HOST:PORT (rank 0's address)");
      split_master(flags.master, "train: --master", o.master_addr, o.master_port);
    } else {
      o.rank = 0;
    }
    o.local_rank = env("LOCAL_RANK").empty() ? o.rank : parse_int(env("LOCAL_RANK"), "LOCAL_RANK");
  } else if (!flags.master.empty() || flags.rank >= 0) {
    fail("train: --rank and --master need --world-size N");
  } else if (!env("WORLD_SIZE").empty()) {
    o.source = "WORLD_SIZE/RANK/MASTER_ADDR/MASTER_PORT";
    o.world_size = parse_int(env("WORLD_SIZE"), "WORLD_SIZE");
    if (o.world_size > 1) {
      if (env("RANK").empty()) fail("WORLD_SIZE=", o.world_size, " is set but RANK is not (torchrun sets both)");
      o.rank = parse_int(env("RANK"), "RANK");
      o.local_rank = env("LOCAL_RANK").empty() ? o.rank : parse_int(env("LOCAL_RANK"), "LOCAL_RANK");
      if (env("MASTER_ADDR").empty() || env("MASTER_PORT").empty())
        fail("WORLD_SIZE=", o.world_size, " needs MASTER_ADDR and MASTER_PORT (rank 0's address)");
      o.master_addr = env("MASTER_ADDR");
      o.master_port = parse_int(env("MASTER_PORT"), "MASTER_PORT");
    }
  } else if (!env("SLURM_NTASKS").empty()) {
    o.source = "SLURM_NTASKS/SLURM_PROCID/MASTER_ADDR";
    o.world_size = parse_int(env("SLURM_NTASKS"), "SLURM_NTASKS");
    if (o.world_size > 1) {
      if (env("SLURM_PROCID").empty()) fail("SLURM_NTASKS=", o.world_size, " is set but SLURM_PROCID is not");
      o.rank = parse_int(env("SLURM_PROCID"), "SLURM_PROCID");
      o.local_rank = env("SLURM_LOCALID").empty() ? 0 : parse_int(env("SLURM_LOCALID"), "SLURM_LOCALID");
      if (env("MASTER_ADDR").empty())
        fail("SLURM_NTASKS=", o.world_size, " needs MASTER_ADDR (the first node of the allocation; see docs/distributed.md)");
      o.master_addr = env("MASTER_ADDR");
      if (!env("MASTER_PORT").empty()) o.master_port = parse_int(env("MASTER_PORT"), "MASTER_PORT");
    }
  } else {
    return o;  // single process
  }
  if (o.world_size < 1) fail(o.source, ": world size ", o.world_size, " is not positive");
  if (o.world_size == 1) {
    o.rank = 0;
    return o;
  }
  if (o.rank < 0 || o.rank >= o.world_size)
    fail(o.source, ": rank ", o.rank, " is outside 0..", o.world_size - 1);
  if (o.master_port < 1 || o.master_port > 65535) fail(o.source, ": port ", o.master_port, " is outside 1..65535");
  if (flags.timeout_s > 0) {
    o.timeout_s = flags.timeout_s;
  } else if (!env("CONDUCTOR_DIST_TIMEOUT").empty()) {
    char* end = nullptr;
    const std::string t = env("CONDUCTOR_DIST_TIMEOUT");
    o.timeout_s = std::strtod(t.c_str(), &end);
    if (*end != '\0' || !(o.timeout_s > 0)) fail("CONDUCTOR_DIST_TIMEOUT: '", t, "' is not a positive number of seconds");
  }
  return o;
}

std::shared_ptr<ProcessGroup> make_process_group(const DistributedOptions& o) {
  if (o.world_size <= 1) return std::make_shared<LocalProcessGroup>();
  return std::make_shared<C10dProcessGroup>(o);
}

torch::Tensor normalize_advantages_across(const torch::Tensor& advantages, ProcessGroup& group) {
  const auto a64 = advantages.to(torch::kFloat64);
  std::vector<double> s{a64.sum().item<double>(), static_cast<double>(advantages.numel())};
  group.sum(s);
  const double mean = s[0] / s[1];
  std::vector<double> sq{(a64 - mean).pow(2).sum().item<double>()};
  group.sum(sq);
  if (s[1] < 2) return advantages - static_cast<float>(mean);
  const double stdev = std::sqrt(sq[0] / (s[1] - 1));
  return ((a64 - mean) / (stdev + 1e-8)).to(advantages.scalar_type());
}

}  // namespace conductor
