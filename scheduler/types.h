// Scalar ids shared by the scheduler, the runners and the front doors.
#pragma once

#include <cstdint>

namespace tessera {

using TokenId = int32_t;  // index into the model's vocabulary
using SeqId = uint64_t;   // one sequence (one choice of one request); never reused in a process
using BlockId = int32_t;  // index of a KV-cache block, 0 <= id < num_kv_blocks

}  // namespace tessera
