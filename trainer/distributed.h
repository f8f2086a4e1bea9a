// Data-parallel training on PyTorch's own distributed engine (c10d): rendezvous through a TCPStore
// hosted by rank 0, collectives through ProcessGroupGloo (CPU) or, in a CUDA build, ProcessGroupNCCL
// (GPU, one rank per GPU: cuda:LOCAL_RANK). docs/distributed.md.
//
// A run joins a process group when it is given one, in this order of precedence:
//   1. `conductor train --world-size N --rank R --master HOST:PORT`
//   2. torchrun's variables: WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
//   3. srun's variables: SLURM_NTASKS, SLURM_PROCID, SLURM_LOCALID (+ MASTER_ADDR, MASTER_PORT)
// A world size of 1 (or nothing set) is the single-process trainer (LocalProcessGroup), unchanged.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/error.h"
#include "trainer/process_group.h"

namespace conductor {

// A collective that failed or timed out (a peer rank died, hung or never joined). The message
// names this rank and the rank(s) that stopped answering.
class DistributedError : public Error {
 public:
  explicit DistributedError(const std::string& what) : Error(what) {}
};

struct DistributedOptions {
  int world_size = 1;
  int rank = 0;
  int local_rank = 0;
  std::string master_addr;      // rank 0's address (it hosts the TCPStore)
  int master_port = 29500;
  double timeout_s = 120.0;     // every collective and the rendezvous; a dead peer is an error after this
  std::string backend = "gloo"; // gloo (CPU), or nccl (compiled in only against a CUDA LibTorch)
  std::string source;           // where the settings came from, for messages
};

// Command-line settings (0 / empty = not given).
struct DistributedFlags {
  int world_size = 0;
  int rank = -1;
  std::string master;           // HOST:PORT
  double timeout_s = 0.0;       // --dist-timeout (else CONDUCTOR_DIST_TIMEOUT, else 120)
  std::string backend;          // --dist-backend (else CONDUCTOR_DIST_BACKEND, else gloo)
};

// Resolves the flags and the environment (`getenv` is a parameter so tests can pass a map).
// Throws conductor::Error naming the variable or flag that is missing or out of range.
DistributedOptions resolve_distributed_options(const DistributedFlags& flags,
                                               const std::function<const char*(const char*)>& getenv);

// The process group of `o`: LocalProcessGroup for a world size of 1, else a c10d Gloo group (blocks
// until every rank has joined, at most o.timeout_s); NCCL when o.backend is nccl (CUDA builds).
std::shared_ptr<ProcessGroup> make_process_group(const DistributedOptions& o);

// Whether ProcessGroupNCCL is compiled in (a CUDA LibTorch), and what LibTorch this binary was built
// against ("LibTorch 2.11.0, CUDA 13.0").
bool nccl_compiled_in();
std::string torch_build_description();

// Per-minibatch advantage normalization over the union of every rank's minibatch rows (the
// single-process normalize_advantages() over the global minibatch): (a - mean) / (std + 1e-8) with
// the unbiased standard deviation, the sums taken in double precision.
torch::Tensor normalize_advantages_across(const torch::Tensor& advantages, ProcessGroup& group);

}  // namespace conductor
