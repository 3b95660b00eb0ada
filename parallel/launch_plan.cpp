// Resolution of flags and launcher environment into a LaunchPlan (see launch_plan.h).
#include "parallel/launch_plan.h"

#include <charconv>

#include "common/error.h"

namespace tessera::parallel {
namespace {

struct Launcher {
  std::string name;
  int rank = -1;
  int size = -1;
  int local_rank = -1;
  std::string leader_address;  // LWS only
};

int env_int(const GetEnv& getenv, const char* name, int fallback) {
  const char* v = getenv(name);
  if (!v || !*v) return fallback;
  int out = 0;
  const char* end = v + std::char_traits<char>::length(v);
  auto [p, ec] = std::from_chars(v, end, out);
  TS_CHECK(ec == std::errc() && p == end && out >= 0, kInvalidArgument,
           "environment variable {}='{}' is not a non-negative integer", name, v);
  return out;
}

Launcher detect(const GetEnv& getenv) {
  Launcher l;
  if (getenv("LWS_WORKER_INDEX") && getenv("LWS_LEADER_ADDRESS")) {
    l.name = "LeaderWorkerSet";
    l.rank = env_int(getenv, "LWS_WORKER_INDEX", -1);
    l.size = env_int(getenv, "LWS_GROUP_SIZE", -1);
    l.leader_address = getenv("LWS_LEADER_ADDRESS");
    return l;
  }
  struct Names {
    const char* launcher;
    const char* rank;
    const char* size;
    const char* local;
  };
  for (const Names& n : {Names{"Slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
                         Names{"Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
                         Names{"PMI", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"}}) {
    if (getenv(n.rank) && getenv(n.size)) {
      l.name = n.launcher;
      l.rank = env_int(getenv, n.rank, -1);
      l.size = env_int(getenv, n.size, -1);
      l.local_rank = env_int(getenv, n.local, -1);
      TS_CHECK(l.rank < l.size, kInvalidArgument, "{}={} is not below {}={}", n.rank, l.rank, n.size, l.size);
      return l;
    }
  }
  return l;
}

}  // namespace

LaunchPlan resolve_launch_plan(const ParallelOptions& o, const GetEnv& getenv) {
  TS_CHECK(o.tp >= 1 && o.tp <= 65536, kInvalidArgument, "--tp {} must be between 1 and 65536", o.tp);
  TS_CHECK(o.nnodes >= 1, kInvalidArgument, "--nnodes {} must be at least 1", o.nnodes);
  const Launcher l = detect(getenv);
  LaunchPlan p;
  p.world_size = o.tp;
  p.nnodes = o.nnodes;
  p.rendezvous = o.rendezvous;
  p.source = "flags";
  bool per_rank = false;
  int node_rank = o.node_rank;
  if (!l.name.empty() && l.size > 1) {
    p.source = l.name;
    if (l.name == "LeaderWorkerSet") {
      // One pod per node: the group is the node count.
      if (o.nnodes == 1) p.nnodes = l.size;
      TS_CHECK(p.nnodes == l.size, kInvalidArgument, "--nnodes {} but LWS_GROUP_SIZE={}", o.nnodes, l.size);
      if (node_rank < 0) node_rank = l.rank;
      if (p.rendezvous.empty()) p.rendezvous = l.leader_address + ":" + std::to_string(kDefaultRendezvousPort);
    } else if (l.size == o.tp && (o.nnodes == 1 || o.nnodes != o.tp)) {
      // One process per rank (srun -n TP, mpirun -np TP).
      per_rank = true;
      TS_CHECK(o.node_rank < 0 || o.nnodes == 1, kInvalidArgument,
               "--node-rank {} given, but {} starts one process per rank (rank {} of {})", o.node_rank, l.name, l.rank,
               l.size);
    } else {
      // One process per node.
      if (o.nnodes == 1) p.nnodes = l.size;
      TS_CHECK(p.nnodes == l.size, kInvalidArgument,
               "{} started {} processes: --tp {} over --nnodes {} needs {} (one per rank) or {} (one per node)", l.name,
               l.size, o.tp, o.nnodes, o.tp, o.nnodes);
      if (node_rank < 0) node_rank = l.rank;
    }
  }
  TS_CHECK(o.tp % p.nnodes == 0, kInvalidArgument,
           "--tp {} cannot be spread evenly over {} nodes (ranks per node must be a whole number)", o.tp, p.nnodes);
  p.ranks_per_node = o.tp / p.nnodes;
  if (per_rank) {
    p.first_rank = l.rank;
    p.local_ranks = 1;
    p.node_rank = l.rank / p.ranks_per_node;
    p.first_local_index = l.local_rank >= 0 ? l.local_rank : l.rank % p.ranks_per_node;
    TS_CHECK(o.tp == 1 || !p.rendezvous.empty(), kInvalidArgument,
             "{} starts one process per rank: pass --rendezvous HOST:PORT (rank 0's host)", l.name);
    return p;
  }
  p.node_rank = node_rank < 0 ? 0 : node_rank;
  TS_CHECK(p.node_rank < p.nnodes, kInvalidArgument, "node rank {} is not below --nnodes {}", p.node_rank, p.nnodes);
  TS_CHECK(p.nnodes == 1 || !p.rendezvous.empty(), kInvalidArgument,
           "--nnodes {} needs --rendezvous HOST:PORT (the address where node 0's rank 0 listens)", p.nnodes);
  TS_CHECK(p.nnodes == 1 || node_rank >= 0, kInvalidArgument,
           "--nnodes {} needs --node-rank (or a launcher's environment) on every node", p.nnodes);
  p.first_rank = p.node_rank * p.ranks_per_node;
  p.local_ranks = p.ranks_per_node;
  p.first_local_index = 0;
  return p;
}

}  // namespace tessera::parallel
