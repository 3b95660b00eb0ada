// The collectives a tensor-parallel job runs on (--tp-backend) and how CUDA ranks map to devices
// (--tp-ranks-per-device): nccl (CUDA ranks, one device each, collectives on device memory), or ucx
// (CPU ranks; or CUDA ranks whose collectives are staged through host memory, HostStagedCommunicator,
// which also lets K ranks share one GPU: local rank i on device i / K). Pure checks on the flags,
// run before anything starts. It must never touch a device or the environment.
#pragma once

#include <string>

#include "parallel/launch_plan.h"

namespace tessera::parallel {

// The backend that runs ("nccl" or "ucx") for ranks on `device` ("cpu" or "cuda"): auto is nccl on
// cuda and ucx on cpu. Throws kInvalidArgument naming the flag and the value seen when the
// combination cannot run: nccl on cpu; --tp-ranks-per-device outside 1..64, above 1 on cpu or with
// nccl (NCCL refuses two ranks on one GPU).
std::string resolve_tp_backend(const ParallelOptions& options, const std::string& device);

// The CUDA device of the rank with index `local_index` on its node when `ranks_per_device` ranks
// share each device.
int cuda_device_of(int local_index, int ranks_per_device);

}  // namespace tessera::parallel
