// Whether a cuBLASLt algorithm that splits k may be run for a given k. cuBLASLt (12.8 and 13.x, sm_90
// and sm_100/103) can return the product over only the first k - (k % block_k) values of k when it
// splits k (reported upstream: facebookexperimental/triton PR 2767; the condition found there is
// tail = k % block_k != 0, (k / block_k) % splits == 0 and splits > tail, block_k the kernel's k step,
// 64 for its bf16/fp16 family). Tessera's kernel tests hit it on nvidia-h200: m 83, n 1024, k 1544 at
// 12 splits lost 8 values of k (relative error 0.071). The kernel's block_k is not visible through
// cuBLASLt's API, so any split count above one is refused where k is not a multiple of 128 (no model
// dimension Tessera runs is affected: hidden and intermediate sizes are multiples of 128). Pure host
// arithmetic: never touches cuBLASLt or a device.
#pragma once

#include <cstdint>

namespace tessera::cuda {

constexpr int32_t kSplitKSafeMultiple = 128;  // every kernel family's block_k divides it

// True when an algorithm splitting k `splits` ways (1: no split) may run a product of depth k.
constexpr bool split_k_safe(int32_t k, int64_t splits) { return splits <= 1 || k % kSplitKSafeMultiple == 0; }

}  // namespace tessera::cuda
