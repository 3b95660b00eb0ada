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

// Whether a one-split launch of `blocks` blocks ends in a wave of fewer blocks than there are
// multiprocessors (b80: 640 blocks on 528 slots leave 112 for 132 SMs): then most SMs idle through a
// whole block's time, and splitting for whole waves pays a little. With a block or more per SM in the
// last wave (b96: 240 blocks, b112: 368) every SM streams through it, and splits cost more than they
// save. nvidia-h200, engine, 1k contexts (docs/CUDA.md, session 10): b80 at 3 splits 9.23 / 9.09 /
// 9.13 / 9.34 / 9.33 ms against 9.38 / 9.31 / 9.33 / 9.56 / 9.30 at one (faster in 5 of 6 pairs);
// b96 at 2 splits 9.61 / 9.71 against 9.35 / 9.31; b112 at 4: 10.05 against 9.49; b48 at 4: 6.90
// against 6.54. In the kernel bench every split past one costs 8-30 µs at batch (b64 72 -> 89 µs at
// two splits; likely the split merge's thousands of one-head blocks), which is why.
constexpr bool thin_last_wave(int64_t blocks, int64_t resident, int64_t sm_count) {
  if (blocks <= resident || resident <= 0) return false;
  const int64_t last = blocks % resident;
  return last != 0 && last < sm_count;
}

// Defaults of whole_wave_splits: a fill of 90% is close enough to whole waves (b80 at three splits:
// 1,920 blocks in 3.64 waves, 91%); at most 4 splits (b80 forced to 2 / 3 / 4 splits read 9.21 /
// 9.09-9.33 / 9.10 ms: no trend past 2; more only add merge work).
inline constexpr double kWholeWaveFill = 0.90;
inline constexpr int32_t kWholeWaveMaxSplits = 4;

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
