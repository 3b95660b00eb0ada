// A CUDA tensor-parallel rank: the ShardRunnerFactory TpServing uses with --device cuda. It builds a
// CudaRunner holding only the rank's slice of the model (checkpoint slices read from the
// memory-mapped safetensors; dummy weights generated as exactly the slice of what the whole-model
// fill would give) on the rank's device: its local index on the node, divided by the ranks sharing
// a device (--tp-ranks-per-device), each sharing rank budgeting its part of the device's memory.
// Collectives: an NcclCommunicator on the runner's stream (unique id over the group's UCX plan
// channel; bounded waits; aborted, never waited on, once the group is lost), or with --tp-backend
// ucx a HostStagedCommunicator over the group's UCX communicator (the runner then runs its steps
// eagerly: host collectives cannot be captured in CUDA graphs). Built only with the CUDA backend.
// It must never fall back to another device or to collectives the job did not choose.
#pragma once

#include <chrono>

#include "parallel/tp_serving.h"

namespace tessera::parallel {

// How a CUDA rank's collectives run and where it sits (from --tp-backend, --tp-ranks-per-device and
// --tp-collective-timeout-ms; tp_backend.h checks them).
struct CudaRankOptions {
  bool host_staged = false;  // --tp-backend ucx: HostStagedCommunicator; else NCCL
  int ranks_per_device = 1;  // local rank i on device i / ranks_per_device
  std::chrono::milliseconds collective_timeout{30000};
};

// From the parsed flags; throws kInvalidArgument naming the flag for a combination that cannot run.
CudaRankOptions cuda_rank_options(const ParallelOptions& parallel);

ShardRunner make_cuda_shard_runner(const ShardRunnerRequest& request, const CudaRankOptions& options);

}  // namespace tessera::parallel
