// TpProcess: turns one `tessera serve` process into its part of a TP job. It resolves the
// LaunchPlan (flags + launcher environment), obtains the launch secret (--tp-secret-file,
// TESSERA_TP_SECRET[_FILE], or a fresh random one when every rank runs on this node), binds the
// rendezvous when it hosts rank 0, spawns this node's other ranks as `<exe> <worker args> --rank R
// ...` (the secret travels in their environment, never in argv), and joins the group. It reaps
// its children on destruction (bounded, then SIGKILL): no orphaned rank outlives it.
// It must never start a multi-node job without an operator-supplied secret.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "parallel/launch_plan.h"
#include "parallel/model_fingerprint.h"
#include "parallel/rank_group.h"
#include "parallel/shard_spec.h"

namespace tessera::parallel {

// Environment of spawned ranks (informative; argv carries the same values except the secret).
inline constexpr const char* kRankEnv = "TESSERA_TP_RANK";
inline constexpr const char* kWorldEnv = "TESSERA_TP_WORLD_SIZE";
inline constexpr const char* kRendezvousEnv = "TESSERA_TP_RENDEZVOUS";
inline constexpr const char* kLocalIndexEnv = "TESSERA_TP_LOCAL_INDEX";

struct TpProcessConfig {
  ParallelOptions options;
  ModelFingerprint fingerprint;
  std::string exe = "/proc/self/exe";
  std::vector<std::string> worker_args;  // e.g. {"worker", "--model", DIR}; rank flags are appended
};

class TpProcess {
 public:
  static std::unique_ptr<TpProcess> start(const TpProcessConfig& config, const GetEnv& getenv);
  ~TpProcess();

  const LaunchPlan& plan() const { return plan_; }
  RankGroup& group() { return *group_; }
  ShardSpec shard() const { return {group_->rank(), plan_.world_size}; }
  bool is_rank0() const { return group_->rank() == 0; }
  const std::vector<pid_t>& children() const { return children_; }
  // Waits up to `wait` for the spawned ranks, then kills the rest; returns the worst exit code
  // (0 when all exited cleanly).
  int reap(std::chrono::milliseconds wait);

 private:
  TpProcess() = default;
  LaunchPlan plan_;
  std::vector<pid_t> children_;
  std::unique_ptr<RankGroup> group_;
};

}  // namespace tessera::parallel
