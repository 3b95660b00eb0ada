// A CUDA tensor-parallel rank: the ShardRunnerFactory TpServing uses with --device cuda. It builds a
// CudaRunner on the rank's device (its local index on the node) holding only the rank's slice of
// the model (checkpoint slices read from the memory-mapped safetensors; dummy weights generated as
// exactly the slice of what the whole-model fill would give), with an NcclCommunicator on the
// runner's stream (unique id over the group's UCX plan channel; bounded waits; aborted, never
// waited on, once the group is lost). Built only with the CUDA backend.
// It must never fall back to another device or to host collectives.
#pragma once

#include "parallel/tp_serving.h"

namespace tessera::parallel {

// The collective timeout comes from the group (--tp-collective-timeout-ms).
ShardRunner make_cuda_shard_runner(const ShardRunnerRequest& request, std::chrono::milliseconds collective_timeout);

}  // namespace tessera::parallel
