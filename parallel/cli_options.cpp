// Registration of the tensor-parallel flags (see cli_options.h).
#include "parallel/cli_options.h"

namespace tessera::parallel {

void add_parallel_options(CLI::App* app, ParallelOptions& o) {
  app->add_option("--tp", o.tp, "Tensor-parallel ranks (one process per device); on one node the others are spawned")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  app->add_option("--nnodes", o.nnodes, "Nodes the --tp ranks span (from LWS_GROUP_SIZE / the launcher when unset)")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  app->add_option("--node-rank", o.node_rank,
                  "This node's index (default: LWS_WORKER_INDEX, SLURM_PROCID, OMPI_COMM_WORLD_RANK or PMI_RANK)")
      ->check(CLI::Range(0, 65535));
  app->add_option("--rendezvous", o.rendezvous,
                  "HOST:PORT where rank 0 listens for the other ranks (required across nodes)");
  app->add_option("--tp-secret-file", o.secret_file,
                  "File with the job's 32-hex-digit launch secret (or env TESSERA_TP_SECRET); required across nodes");
  app->add_option("--tp-backend", o.backend,
                  "Collectives: auto (nccl with --device cuda, ucx on cpu); naming nccl or ucx runs the "
                  "tensor-parallel runtime even at --tp 1 (one-rank group)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "nccl", "ucx"}));
  app->add_option("--tp-ranks-per-device", o.ranks_per_device,
                  "cuda with --tp-backend ucx: ranks sharing one GPU (local rank i on device i / K, each with 1/K of "
                  "the --gpu-memory-utilization budget); for machines where NCCL cannot run, or one GPU running "
                  "--tp 2 (slow: every collective goes through host memory)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app->add_option("--rendezvous-timeout", o.rendezvous_timeout_s, "Seconds to wait for every rank to join")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  app->add_option("--tp-collective-timeout-ms", o.collective_timeout_ms,
                  "Longest wait for peers inside one collective before the group is declared lost")
      ->capture_default_str()
      ->check(CLI::Range(100, 3600000));
  app->add_option("--tp-heartbeat-timeout-ms", o.heartbeat_timeout_ms,
                  "A rank silent this long on the control channel is declared lost")
      ->capture_default_str()
      ->check(CLI::Range(500, 3600000));
}

}  // namespace tessera::parallel
