// decode_graph_plan: the decode graph keys a CUDA runner captures at start (host logic, runs in CI).
#include "model/decode_graph_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "common/error.h"

namespace tessera {
namespace {

TEST(DecodeGraphPlan, BucketsArePowersOfTwoWithinTheStepLimitsAndTheLimitItself) {
  EXPECT_EQ(decode_graph_buckets(256, 8192), (std::vector<int32_t>{1, 2, 4, 8, 16, 32, 64, 128, 256}));
  EXPECT_EQ(decode_graph_buckets(512, 8192), (std::vector<int32_t>{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}));
  EXPECT_EQ(decode_graph_buckets(1024, 8192).back(), 512);  // larger batches run eagerly
  // --max-num-seqs 96: batches 65-96 replay the 96 graph instead of running eagerly.
  EXPECT_EQ(decode_graph_buckets(96, 8192), (std::vector<int32_t>{1, 2, 4, 8, 16, 32, 64, 96}));
  EXPECT_EQ(decode_graph_buckets(300, 8192).back(), 300);
  EXPECT_EQ(decode_graph_buckets(600, 8192).back(), 512);
  EXPECT_EQ(decode_graph_buckets(256, 20), (std::vector<int32_t>{1, 2, 4, 8, 16, 20}));  // max_num_tokens bounds too
  EXPECT_EQ(decode_graph_buckets(1, 8192), (std::vector<int32_t>{1}));
  EXPECT_TRUE(decode_graph_buckets(0, 8192).empty());
}

TEST(DecodeGraphPlan, BucketOfABatchIsTheSmallestThatHoldsIt) {
  EXPECT_EQ(decode_graph_bucket(1, 256, 8192), 1);
  EXPECT_EQ(decode_graph_bucket(3, 256, 8192), 4);
  EXPECT_EQ(decode_graph_bucket(17, 256, 8192), 32);
  EXPECT_EQ(decode_graph_bucket(256, 256, 8192), 256);
  EXPECT_EQ(decode_graph_bucket(257, 300, 8192), 300);  // the limit is a bucket too
  EXPECT_EQ(decode_graph_bucket(513, 600, 8192), 0);    // above the largest bucket: no graph
  EXPECT_EQ(decode_graph_bucket(80, 96, 8192), 96);
  EXPECT_EQ(decode_graph_bucket(5, 4, 8192), 0);
}

TEST(DecodeGraphPlan, SamplerModeFollowsTheHostPromises) {
  EXPECT_EQ(decode_sampler_mode(true, true), DecodeSamplerMode::kGreedyOnly);
  EXPECT_EQ(decode_sampler_mode(true, false), DecodeSamplerMode::kGreedyOnly);  // greedy rows select nothing
  EXPECT_EQ(decode_sampler_mode(false, true), DecodeSamplerMode::kNoSelection);
  EXPECT_EQ(decode_sampler_mode(false, false), DecodeSamplerMode::kFull);
  EXPECT_TRUE(greedy_only(DecodeSamplerMode::kGreedyOnly));
  EXPECT_TRUE(no_selection(DecodeSamplerMode::kGreedyOnly));
  EXPECT_TRUE(no_selection(DecodeSamplerMode::kNoSelection));
  EXPECT_FALSE(no_selection(DecodeSamplerMode::kFull));
  EXPECT_FALSE(greedy_only(DecodeSamplerMode::kNoSelection));
}

// A heuristic shaped like the decode kernel's: doubling with the context up to a cap that shrinks as
// the bucket grows.
int32_t doubling_splits(int32_t bucket, int32_t context) {
  int32_t p = 1;
  while (p < 256 && bucket * p * 2 <= 64 && p * 2 * 64 <= context) p *= 2;
  return p;
}

TEST(DecodeGraphPlan, KeysCoverEverySplitCountOfEveryContextAndEveryMode) {
  const std::vector<int32_t> buckets = decode_graph_buckets(64, 8192);
  const int32_t max_len = 1000;
  const auto keys = decode_graph_keys(buckets, max_len, doubling_splits);
  ASSERT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  ASSERT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end());
  const std::set<DecodeGraphKey> set(keys.begin(), keys.end());
  // Every (bucket, context, mode) a step can meet finds its key.
  for (int32_t b : buckets)
    for (int32_t ctx = 1; ctx <= max_len; ++ctx)
      for (DecodeSamplerMode m : kDecodeSamplerModes)
        EXPECT_TRUE(set.contains(DecodeGraphKey{b, doubling_splits(b, ctx), m})) << b << " " << ctx;
  // And no key no step can meet: bucket 1 reaches 8 splits by context 1000 (16 needs 2048 keys).
  size_t reachable = 0;
  for (int32_t b : buckets) {
    std::set<int32_t> s;
    for (int32_t ctx = 1; ctx <= max_len; ++ctx) s.insert(doubling_splits(b, ctx));
    reachable += s.size();
  }
  EXPECT_EQ(keys.size(), reachable * 3);
  EXPECT_TRUE(set.contains(DecodeGraphKey{1, 8, DecodeSamplerMode::kFull}));
  EXPECT_FALSE(set.contains(DecodeGraphKey{1, 16, DecodeSamplerMode::kFull}));
  EXPECT_FALSE(set.contains(DecodeGraphKey{64, 2, DecodeSamplerMode::kFull}));  // 64 * 2 > 64: one split only
}

TEST(DecodeGraphPlan, ANonMonotonicHeuristicStillGetsEveryValue) {
  // 4 splits only between contexts 300 and 310: a scan of powers of two alone would miss it.
  auto odd = [](int32_t, int32_t ctx) { return ctx >= 300 && ctx <= 310 ? 4 : 1; };
  const auto keys = decode_graph_keys({1, 2}, 512, odd);
  EXPECT_EQ(keys.size(), 2u * 2u * 3u);
  EXPECT_EQ(keys.front(), (DecodeGraphKey{1, 1, DecodeSamplerMode::kFull}));
  EXPECT_EQ(keys.back(), (DecodeGraphKey{2, 4, DecodeSamplerMode::kNoSelection}));
}

TEST(DecodeGraphPlan, RejectsABadLengthOrSplitCount) {
  try {
    decode_graph_keys({1}, 0, doubling_splits);
    FAIL() << "max_model_len 0 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("got 0"), std::string::npos) << e.what();
  }
  try {
    decode_graph_keys({4}, 64, [](int32_t, int32_t ctx) { return ctx == 50 ? 0 : 1; });
    FAIL() << "a split count of 0 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("0 splits for bucket 4 at context 50"), std::string::npos) << e.what();
  }
  try {
    decode_graph_keys({2}, 64, [](int32_t, int32_t) { return 0; });  // wrong from the first context on
    FAIL() << "a split count of 0 accepted at context 1";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("0 splits for bucket 2 at context 1"), std::string::npos) << e.what();
  }
  try {
    decode_graph_keys({1}, 8, [](int32_t, int32_t) { return 512; });
    FAIL() << "512 splits accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("512 splits"), std::string::npos) << e.what();
  }
}

TEST(DecodeGraphPlan, KeysNameTheirParts) {
  EXPECT_EQ(to_string(DecodeGraphKey{8, 4, DecodeSamplerMode::kGreedyOnly}), "bucket 8 / 4 splits / greedy sampler");
}

}  // namespace
}  // namespace tessera
