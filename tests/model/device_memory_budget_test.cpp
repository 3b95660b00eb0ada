// The CUDA runner's device memory budget, on the numbers an H200 reports (no device needed): a model
// whose weights do not fit under --gpu-memory-utilization is refused before anything is allocated,
// with the sizes in the message; the KV cache gets whole blocks of what is left, capped by
// --num-kv-blocks, and none at all is refused.
#include "model/device_memory_budget.h"

#include <gtest/gtest.h>

#include <string>

#include "common/error.h"

namespace tessera {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kMiB = uint64_t{1} << 20;

// An H200 as cudaMemGetInfo reports it to a fresh process: 139.8 GiB, ~0.5 GiB taken by the context.
DeviceMemory h200() { return DeviceMemory{static_cast<size_t>(139.3 * kGiB), static_cast<size_t>(139.8 * kGiB)}; }

std::string refusal(uint64_t weights, const DeviceMemory& m, float util) {
  try {
    check_weights_fit(weights, m, util, 512 * kMiB, "the model's weights");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted);
    return e.what();
  }
  return "";
}

TEST(DeviceMemoryBudget, BudgetIsUtilisationOfCapacityLessWhatIsInUseAndTheReserve) {
  const DeviceMemory m{60 * kGiB, 100 * kGiB};  // 40 GiB in use (another process, say)
  EXPECT_DOUBLE_EQ(device_memory_budget(m, 0.75f, 0), 35.0 * kGiB);
  EXPECT_DOUBLE_EQ(device_memory_budget(m, 0.75f, kGiB), 34.0 * kGiB);
  EXPECT_LT(device_memory_budget(m, 0.3f, 0), 0.0);  // already past 30%
}

TEST(DeviceMemoryBudget, SeventyBillionParametersInBf16AreRefusedOnOneH200AtTheDefaultUtilisation) {
  const uint64_t weights = static_cast<uint64_t>(131.4 * kGiB);  // Llama-3-70B in bf16
  const std::string msg = refusal(weights, h200(), 0.90f);
  ASSERT_FALSE(msg.empty()) << "131 GiB of weights accepted under a 125 GiB budget";
  EXPECT_NE(msg.find("131.40 GiB"), std::string::npos) << msg;  // what they need
  EXPECT_NE(msg.find("0.9"), std::string::npos) << msg;         // the utilisation seen
  EXPECT_NE(msg.find("139.80 GiB"), std::string::npos) << msg;  // the device
  EXPECT_NE(msg.find("--tp"), std::string::npos) << msg;        // the way out
  EXPECT_TRUE(refusal(weights, h200(), 0.99f).empty()) << "0.99 leaves 137.4 GiB, enough for 131.4";
}

TEST(DeviceMemoryBudget, AnEightBillionModelFitsAndMemoryOthersHoldCounts) {
  const uint64_t weights = static_cast<uint64_t>(8.03e9 * 2);  // 15 GiB
  EXPECT_TRUE(refusal(weights, h200(), 0.90f).empty());
  const DeviceMemory busy{static_cast<size_t>(20.0 * kGiB), static_cast<size_t>(139.8 * kGiB)};  // others hold 119.8
  const std::string msg = refusal(weights, busy, 0.90f);
  ASSERT_FALSE(msg.empty());
  EXPECT_NE(msg.find("119.80 GiB already in use"), std::string::npos) << msg;
}

TEST(DeviceMemoryBudget, KvCacheGetsWholeBlocksOfWhatIsLeftCappedByTheLimit) {
  const DeviceMemory m{50 * kGiB, 100 * kGiB};  // budget at 0.75 less 1 GiB reserve: 24 GiB
  const int64_t block = 2 * kMiB;
  EXPECT_EQ(kv_cache_blocks(m, 0.75f, kGiB, block, 0), 24 * 512);
  EXPECT_EQ(kv_cache_blocks(m, 0.75f, kGiB, block, 1000), 1000);
  EXPECT_EQ(kv_cache_blocks(m, 0.75f, kGiB, 5 * kMiB, 0), 4915);  // 24,576 MiB / 5, rounded down
}

TEST(DeviceMemoryBudget, NoRoomForOneKvBlockIsRefusedNamingTheBlockSize) {
  const DeviceMemory m{10 * kGiB, 100 * kGiB};  // 90 GiB in use: past 0.9 already
  try {
    kv_cache_blocks(m, 0.9f, 512 * kMiB, 2 * kMiB, 0);
    FAIL() << "a KV cache was sized with no budget left";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted);
    EXPECT_NE(std::string(e.what()).find("2.00 MiB"), std::string::npos) << e.what();
  }
  // A cap does not conjure memory: still refused.
  EXPECT_THROW(kv_cache_blocks(m, 0.9f, 512 * kMiB, 2 * kMiB, 8), Error);
}

TEST(DeviceMemoryBudget, RanksSharingADeviceEachBudgetTheirPartForWhatTheyHoldThemselves) {
  // Two ranks on one 100 GiB device at 0.8: 40 GiB each. The other rank's 39 GiB (free is only 21 GiB)
  // does not count against this one; this one's own 10 GiB does.
  DeviceMemory m{21 * kGiB, 100 * kGiB};
  m.sharers = 2;
  m.own_bytes = 10 * kGiB;
  EXPECT_NEAR(device_memory_budget(m, 0.8f, kGiB), 29.0 * kGiB, double(kMiB));  // 0.8f is not 0.8
  EXPECT_EQ(kv_cache_blocks(m, 0.8f, kGiB, kGiB, 0), 29);
  m.own_bytes = 0;  // the weights check, before anything of this rank is allocated
  try {
    check_weights_fit(45 * kGiB, m, 0.8f, kGiB, "this rank's weights");
    FAIL() << "45 GiB of weights accepted in a 39 GiB part";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted);
    EXPECT_NE(std::string(e.what()).find("0.8 / 2 ranks sharing the device"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("leaves 39.00 GiB"), std::string::npos) << e.what();
  }
  check_weights_fit(38 * kGiB, m, 0.8f, kGiB, "this rank's weights");  // fits
  m.sharers = 0;
  EXPECT_THROW(device_memory_budget(m, 0.8f, 0), Error);
}

TEST(DeviceMemoryBudget, ADeviceReportingMoreFreeThanTotalIsAnInternalError) {
  EXPECT_THROW(device_memory_budget(DeviceMemory{2 * kGiB, kGiB}, 0.9f, 0), Error);
}

}  // namespace
}  // namespace tessera
