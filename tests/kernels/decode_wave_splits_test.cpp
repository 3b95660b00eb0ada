// whole_wave_splits and wave_fill (kernels/cuda/decode_wave_splits.h): the split count of a batch decode
// launch chosen for whole waves, host arithmetic only (no GPU needed; the CUDA kernel tests check
// attention_decode_splits applies it). Slots: an H200's 132 SMs x 4 blocks = 528; blocks at one split:
// sequences x 8 kv heads (the Llama-3-8B shape).
#include <gtest/gtest.h>

#include "kernels/cuda/decode_wave_splits.h"

namespace tessera::cuda {
namespace {

constexpr int64_t kSlots = 528;

TEST(DecodeWaveSplits, FillIsTheShareOfSlotsBusyOverTheWaves) {
  EXPECT_DOUBLE_EQ(wave_fill(528, kSlots), 1.0);
  EXPECT_DOUBLE_EQ(wave_fill(1056, kSlots), 1.0);
  EXPECT_DOUBLE_EQ(wave_fill(640, kSlots), 640.0 / 1056.0);  // b80: 1.21 waves
  EXPECT_DOUBLE_EQ(wave_fill(264, kSlots), 0.5);             // half a wave
  EXPECT_DOUBLE_EQ(wave_fill(529, kSlots), 529.0 / 1056.0);  // one block into a second wave
  EXPECT_DOUBLE_EQ(wave_fill(0, kSlots), 0.0);
  EXPECT_DOUBLE_EQ(wave_fill(10, 0), 0.0);
}

TEST(DecodeWaveSplits, BatchSizesBetweenWholeWavesSplitToFillThem) {
  EXPECT_EQ(whole_wave_splits(64 * 8, kSlots, 8), 1);   // 512 blocks: 0.97 of one wave
  EXPECT_EQ(whole_wave_splits(128 * 8, kSlots, 8), 1);  // 1,024: 0.97 of two
  EXPECT_EQ(whole_wave_splits(96 * 8, kSlots, 8), 2);   // 768 (0.73) -> 1,536 in 2.91 waves
  EXPECT_EQ(whole_wave_splits(80 * 8, kSlots, 8), 3);   // 640 (0.61); 1,280 (0.81); 1,920 in 3.64 (0.91)
  EXPECT_EQ(whole_wave_splits(112 * 8, kSlots, 8), 4);  // 896, 1,792, 2,688 all 0.85; 3,584 in 6.79
  EXPECT_EQ(whole_wave_splits(48 * 8, kSlots, 8), 4);   // 384, 768, 1,152 all 0.73; 1,536 in 2.91
  EXPECT_EQ(whole_wave_splits(40 * 8, kSlots, 8), 3);   // 320 (0.61), 640 (0.61), 960 (0.91)
  EXPECT_EQ(whole_wave_splits(32 * 8, kSlots, 8), 2);   // 256 (0.48), 512 (0.97)
}

TEST(DecodeWaveSplits, FewKeysCapTheSplitsAtTheBestFillAllowed) {
  EXPECT_EQ(whole_wave_splits(80 * 8, kSlots, 2), 2);   // 0.81 beats 0.61
  EXPECT_EQ(whole_wave_splits(80 * 8, kSlots, 1), 1);
  EXPECT_EQ(whole_wave_splits(80 * 8, kSlots, 0), 1);   // too few keys to split at all
  EXPECT_EQ(whole_wave_splits(48 * 8, kSlots, 3), 1);   // 0.73 at 1, 2 and 3: the fewest
  EXPECT_EQ(whole_wave_splits(17 * 8, kSlots, 8), 7);   // 136 blocks: 952 in 1.80 waves
  EXPECT_EQ(whole_wave_splits(17 * 8, kSlots, 4), 3);   // 408 (0.77) beats 544 (0.52)
}

TEST(DecodeWaveSplits, OnlyALastWaveOfFewerBlocksThanSmsIsThin) {
  EXPECT_TRUE(thin_last_wave(80 * 8, kSlots, 132));    // 112 blocks in the second wave
  EXPECT_TRUE(thin_last_wave(67 * 8, kSlots, 132));    // 8
  EXPECT_TRUE(thin_last_wave(82 * 8, kSlots, 132));    // 128
  EXPECT_FALSE(thin_last_wave(83 * 8, kSlots, 132));   // 136: every SM streams through it
  EXPECT_FALSE(thin_last_wave(96 * 8, kSlots, 132));   // 240
  EXPECT_FALSE(thin_last_wave(112 * 8, kSlots, 132));  // 368
  EXPECT_FALSE(thin_last_wave(66 * 8, kSlots, 132));   // 528: whole
  EXPECT_FALSE(thin_last_wave(64 * 8, kSlots, 132));   // one wave, under-filled or not
  EXPECT_FALSE(thin_last_wave(16 * 8, kSlots, 132));
  EXPECT_TRUE(thin_last_wave(140 * 8, kSlots, 132));   // 1,120: 64 in the third wave
  EXPECT_FALSE(thin_last_wave(10, 0, 132));
}

TEST(DecodeWaveSplits, TheFillThresholdIsTheCallers) {
  EXPECT_EQ(whole_wave_splits(80 * 8, kSlots, 8, 0.80), 2);  // 1,280 blocks: 0.81
  EXPECT_EQ(whole_wave_splits(80 * 8, kSlots, 8, 0.99), 4);  // none reaches it: the best fill, 2,560 (0.97; 8 ties)
}

}  // namespace
}  // namespace tessera::cuda
