// The sampler's Gumbel noise: a counter-based hash of (seed, step, token) turned into a uniform and
// then into Gumbel noise, so a row's draw depends on nothing but its own seed and step. Device code
// only, included by sampling*.cu/cuh; never allocates.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

namespace tessera::cuda::sampling {

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Gumbel noise from a uniform in (0, 1) keyed by (seed, step, token). The largest hash rounds to
// u = 1 in fp32 (2^24 - 0.5 is not a float), which would give +inf noise, a token drawn whatever
// its probability; it is held to the largest float below 1. The noise lies in
// [-logf(-logf(2^-25)), -logf(-logf(1 - 2^-24))] = [-2.86, 16.64].
__device__ __forceinline__ float gumbel(uint64_t seed, int64_t step, int32_t token) {
  const uint64_t h = mix64(seed ^ mix64(static_cast<uint64_t>(step) * 0xD1B54A32D192ED03ull + static_cast<uint32_t>(token)));
  const float u = fminf((static_cast<float>(h >> 40) + 0.5f) * (1.0f / 16777216.0f), 0.99999994f);
  return -logf(-logf(u));
}

constexpr float kGumbelBelow = -3.0f, kGumbelAbove = 17.0f;  // bounds of the noise, with room

// The draw's winner scores at least must_beat (draw_bound); a value whose best possible score
// fl(v + kGumbelAbove) is below that cannot win (nor tie), so its noise is skipped.
__device__ __forceinline__ bool may_win(float v, float must_beat) { return !(v + kGumbelAbove < must_beat); }

}  // namespace tessera::cuda::sampling
