// Checks of --tp-backend and --tp-ranks-per-device (see tp_backend.h).
#include "parallel/tp_backend.h"

#include "common/error.h"

namespace tessera::parallel {

std::string resolve_tp_backend(const ParallelOptions& o, const std::string& device) {
  TS_CHECK(device == "cpu" || device == "cuda", kInvalidArgument, "tensor-parallel ranks on device '{}' (cpu or cuda)",
           device);
  TS_CHECK(o.backend == "auto" || o.backend == "nccl" || o.backend == "ucx", kInvalidArgument,
           "--tp-backend must be auto, nccl or ucx, got '{}'", o.backend);
  const bool cuda = device == "cuda";
  const std::string backend = o.backend == "auto" ? (cuda ? "nccl" : "ucx") : o.backend;
  TS_CHECK(cuda || backend == "ucx", kInvalidArgument,
           "--tp-backend {} does not fit --device {}: NCCL runs CUDA ranks; CPU ranks use ucx", backend, device);
  TS_CHECK(o.ranks_per_device >= 1 && o.ranks_per_device <= 64, kInvalidArgument,
           "--tp-ranks-per-device must be in [1, 64], got {}", o.ranks_per_device);
  if (o.ranks_per_device > 1) {
    TS_CHECK(cuda, kInvalidArgument,
             "--tp-ranks-per-device {} applies to CUDA ranks sharing a GPU, not --device {}", o.ranks_per_device,
             device);
    TS_CHECK(backend == "ucx", kInvalidArgument,
             "--tp-ranks-per-device {} needs --tp-backend ucx, got --tp-backend {}{}: NCCL refuses two ranks on one "
             "GPU (ncclInvalidUsage, \"Duplicate GPU detected\")",
             o.ranks_per_device, o.backend, o.backend == "auto" ? " (nccl with --device cuda)" : "");
  }
  return backend;
}

int cuda_device_of(int local_index, int ranks_per_device) {
  TS_CHECK(local_index >= 0, kInvalidArgument, "local rank index {} is negative", local_index);
  TS_CHECK(ranks_per_device >= 1, kInvalidArgument, "--tp-ranks-per-device must be at least 1, got {}",
           ranks_per_device);
  return local_index / ranks_per_device;
}

}  // namespace tessera::parallel
