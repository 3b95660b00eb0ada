// LaunchPlan: which ranks of a TP job this process runs, resolved from the --tp / --nnodes /
// --node-rank / --rendezvous flags and, when present, the environment a launcher sets:
//   Kubernetes LeaderWorkerSet: LWS_LEADER_ADDRESS, LWS_GROUP_SIZE, LWS_WORKER_INDEX
//   Slurm srun:                 SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID (SLURM_NODEID)
//   Open MPI mpirun:            OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK
//   other MPI (PMI):            PMI_RANK, PMI_SIZE
// A launcher may start one process per node (it then spawns the node's ranks itself) or one per
// rank. Explicit flags win over the environment; a contradiction is refused naming both values.
// It must never guess a rendezvous address for a multi-node job that does not name one.
#pragma once

#include <functional>
#include <string>

namespace tessera::parallel {

struct ParallelOptions {
  int tp = 1;
  int nnodes = 1;
  int node_rank = -1;                  // -1: from the launcher's environment, else 0
  std::string rendezvous;              // HOST:PORT of rank 0; empty on one node (picked locally)
  std::string secret_file;             // file holding the 32-hex-digit launch secret (multi-node)
  int rendezvous_timeout_s = 300;
  int collective_timeout_ms = 30000;   // longest wait for peers inside one collective
  int heartbeat_timeout_ms = 10000;    // a rank silent this long is declared lost
  // Collectives: auto (NCCL on --device cuda, UCX host collectives on cpu; the TP runtime only when
  // --tp > 1 or --nnodes > 1), or nccl / ucx: that backend, and the TP runtime even at --tp 1.
  std::string backend = "auto";
  // CUDA ranks sharing one device (--tp-ranks-per-device K, ucx backend only): local rank i runs on
  // device i / K with 1/K of the device's memory budget (tp_backend.h).
  int ranks_per_device = 1;
};

inline constexpr int kDefaultRendezvousPort = 29500;

struct LaunchPlan {
  int world_size = 1;      // ranks in the TP group (= --tp)
  int nnodes = 1;
  int ranks_per_node = 1;
  int node_rank = 0;
  int first_rank = 0;      // this process is rank first_rank ...
  int local_ranks = 1;     // ... and starts local_ranks - 1 more: first_rank + 1, ...
  int first_local_index = 0;  // device index on this node of first_rank
  std::string rendezvous;  // HOST:PORT; empty: single node, rank 0 picks 127.0.0.1 and a free port
  std::string source;      // where the placement came from: "flags", "LeaderWorkerSet", "Slurm", ...
};

using GetEnv = std::function<const char*(const char*)>;

// Throws kInvalidArgument naming the flag or variable and the values seen.
LaunchPlan resolve_launch_plan(const ParallelOptions& options, const GetEnv& getenv);

}  // namespace tessera::parallel
