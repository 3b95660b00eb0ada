// Seed of one choice of an n > 1 request, derived from the request's seed and the choice index.
// It must never depend on anything but its inputs, so every run and every rank agree.
#pragma once

#include <cstdint>

#include "scheduler/block_hash.h"

namespace tessera {

// Choice 0 keeps the request's seed (so n = 1 and choice 0 of n > 1 agree); the others get
// independent, reproducible streams.
inline uint64_t child_seed(uint64_t request_seed, int32_t index) {
  if (index == 0) return request_seed;
  return mix64(request_seed ^ mix64(0xd1b54a32d192ed03ULL * static_cast<uint64_t>(index)));
}

}  // namespace tessera
