// How many key splits a batch decode launch takes so that its blocks fill the GPU in whole waves: a
// launch of B blocks on R resident slots runs ceil(B / R) waves, and where the last one is mostly
// empty (b80 at one split: 640 blocks on 528 slots, 1.21 waves) the GPU streams at a fraction of its
// rate for a whole block's time. Splitting each block's keys s ways makes s x B shorter blocks, whose
// last wave costs 1/s as much. Pure host arithmetic (no CUDA, no device query): attention_decode.cu
// applies it, tests/kernels unit-tests it without a GPU. Never reads configuration or allocates.
#pragma once

#include <cstdint>

namespace tessera::cuda {

// The share of the slots a launch of `blocks` blocks keeps busy over its waves: blocks / (waves x
// resident), 1 for whole waves. 0 when either count is not positive.
constexpr double wave_fill(int64_t blocks, int64_t resident) {
  if (blocks <= 0 || resident <= 0) return 0.0;
  const int64_t waves = (blocks + resident - 1) / resident;
  return static_cast<double>(blocks) / static_cast<double>(waves * resident);
}

// Defaults of whole_wave_splits: a fill of 90% is close enough to whole waves (b96 at two splits:
// 1,536 blocks in 2.91 waves, 97%); past 8 splits a batch launch's merge and per-block start cost
// more than a wave's tail.
inline constexpr double kWholeWaveFill = 0.90;
inline constexpr int32_t kWholeWaveMaxSplits = 8;

// The fewest splits s in [1, max_splits] whose s x `blocks` blocks (blocks: the launch's blocks at one
// split) fill `resident` slots to at least `min_fill` (wave_fill); where none does, the s of the
// highest fill (the fewest among equals). max_splits below 1 counts as 1 (keys too few to split).
constexpr int32_t whole_wave_splits(int64_t blocks, int64_t resident, int32_t max_splits,
                                    double min_fill = kWholeWaveFill) {
  int32_t best = 1;
  double best_fill = wave_fill(blocks, resident);
  for (int32_t s = 1; s <= max_splits; ++s) {
    const double fill = wave_fill(blocks * s, resident);
    if (fill >= min_fill) return s;
    if (fill > best_fill) {
      best = s;
      best_fill = fill;
    }
  }
  return best;
}

}  // namespace tessera::cuda
