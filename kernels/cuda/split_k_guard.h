// Whether a cuBLASLt algorithm that splits k may be run for a given k. cuBLASLt (12.8 and 13.x, sm_90
// and sm_100/103) can return the product over only the first k - (k % block_k) values of k when it
// splits k (reported upstream: facebookexperimental/triton PR 2767, where the losses matched
// tail = k % block_k != 0, (k / block_k) % splits == 0 and splits > tail, block_k the kernel's k step,
// 64 for the kernel family studied). Tessera's kernel tests hit it on nvidia-h200: m 83, n 1024, k 1544
// (= 24 x 64 + 8) at 12 splits lost 8 values of k (relative error 0.071), 2-8 and 16 splits did not.
// block_k is not visible through cuBLASLt's API, so the rule is conservative for any block_k of 32-256:
// no split where k is not a multiple of 64 (a tail of up to 63 for block_k 64, or of k % 32 for 32),
// and at most 64 splits otherwise (then a tail is 64 or more, for block_k 128 or 256, and a loss needs
// more splits than the tail). Model dimensions (multiples of 64) keep every split count Gemm tries (2-16).
// Pure host arithmetic: never touches cuBLASLt or a device.
#pragma once

#include <cstdint>

namespace tessera::cuda {

constexpr int32_t kSplitKMultiple = 64;  // k must be a multiple of this to be split at all
constexpr int64_t kSplitKMaxSplits = 64;  // and split at most this many ways

// True when an algorithm splitting k `splits` ways (1 or 0: no split) may run a product of depth k.
constexpr bool split_k_safe(int32_t k, int64_t splits) {
  return splits <= 1 || (k % kSplitKMultiple == 0 && splits <= kSplitKMaxSplits);
}

}  // namespace tessera::cuda
