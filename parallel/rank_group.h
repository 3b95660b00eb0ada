// RankGroup: one rank's membership in a TP job: the rendezvous, the UCX communicator connected to
// every rank, and the liveness thread on the control channel, sharing one GroupHealth. join()
// returns only when every rank has joined and a first barrier over UCX has passed; shutdown()
// leaves in order (peers do not treat it as a failure); abort() tells peers the group failed.
// It must never outlive a failure quietly: once health() failed, every call throws kUnavailable.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "parallel/launch_secret.h"
#include "parallel/liveness.h"
#include "parallel/rendezvous.h"
#include "parallel/ucx_communicator.h"

namespace tessera::parallel {

struct RankGroupConfig {
  int rank = 0;
  int world_size = 1;
  std::string rendezvous;  // HOST:PORT of rank 0
  Digest fingerprint{};
  std::string description;
  std::chrono::milliseconds rendezvous_timeout{300000};
  std::chrono::milliseconds collective_timeout{30000};
  LivenessConfig liveness;
};

class RankGroup {
 public:
  // listener: rank 0's already-bound rendezvous socket, if any (port 0 in tests, local spawn).
  static std::unique_ptr<RankGroup> join(const RankGroupConfig& config, const LaunchSecret& secret,
                                         Fd listener = Fd());
  ~RankGroup();

  int rank() const { return config_.rank; }
  int world_size() const { return config_.world_size; }
  UcxCommunicator& comm() { return *comm_; }
  GroupHealth& health() { return *health_; }
  const std::shared_ptr<GroupHealth>& health_ptr() const { return health_; }
  // The job's launch secret (to seal the plan channel); never logged or sent.
  const LaunchSecret& secret() const { return secret_; }

  // Orderly exit: rank 0 waits up to `wait` for every rank's goodbye.
  void shutdown(std::chrono::milliseconds wait = std::chrono::milliseconds(3000));
  void abort(const std::string& reason);

 private:
  RankGroup() = default;
  RankGroupConfig config_;
  LaunchSecret secret_;
  std::shared_ptr<GroupHealth> health_;
  std::unique_ptr<UcxCommunicator> comm_;
  std::unique_ptr<Liveness> liveness_;
};

}  // namespace tessera::parallel
