// The UCX host communicator across 2 and 4 real processes on loopback: all-reduce (direct and ring
// paths, fp32 and bf16), all-gather, broadcast, barrier and StepPlan-sized messages, on fresh random
// data; every rank must hold exactly the expected bits.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "tests/parallel/forked_ranks.h"

namespace tessera::parallel {
namespace {

using testing::RankContext;

// Integer-valued floats: their sums are exact in any order, so the expectation is exact.
std::vector<float> rank_data(int rank, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed * 1000003 + static_cast<uint64_t>(rank));
  std::uniform_int_distribution<int> d(-1000, 1000);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(d(rng));
  return v;
}

int check(bool ok, const char* what, int rank) {
  if (!ok) std::fprintf(stderr, "rank %d: %s mismatch\n", rank, what);
  return ok ? 0 : 1;
}

int collectives_body(RankContext& ctx) {
  auto g = testing::join_test_group(ctx);
  auto& comm = g->comm();
  const int P = ctx.world_size;
  const uint64_t seed = std::random_device{}();
  uint64_t shared_seed = seed;
  comm.broadcast(&shared_seed, 2, DType::kF32, 0);  // 8 bytes = 2 "floats"
  int bad = 0;
  // Sizes exercise the direct path, the ring path, and counts not divisible by the world size.
  for (size_t n : {size_t{1}, size_t{3}, size_t{1000}, size_t{16384}, size_t{100003}}) {
    auto v = rank_data(ctx.rank, n, shared_seed + n);
    std::vector<float> expect(n, 0.0f);
    for (int r = 0; r < P; ++r) {
      auto o = rank_data(r, n, shared_seed + n);
      for (size_t i = 0; i < n; ++i) expect[i] += o[i];
    }
    comm.all_reduce_sum(v.data(), n, DType::kF32);
    bad += check(v == expect, "all_reduce f32", ctx.rank);

    // bf16: small integers are exact in bf16 and so are their sums (|sum| <= 256 here).
    std::vector<bf16> b(n);
    std::vector<float> bexpect(n, 0.0f);
    for (size_t i = 0; i < n; ++i) b[i] = f32_to_bf16(static_cast<float>(static_cast<int>(v[i]) % 64));
    // Every rank contributes the same vector v % 64, so the sum is P * that.
    for (size_t i = 0; i < n; ++i) bexpect[i] = P * bf16_to_f32(b[i]);
    comm.all_reduce_sum(b.data(), n, DType::kBF16);
    bool bok = true;
    for (size_t i = 0; i < n; ++i) bok = bok && bf16_to_f32(b[i]) == bexpect[i];
    bad += check(bok, "all_reduce bf16", ctx.rank);

    std::vector<float> gathered(n * P);
    auto mine = rank_data(ctx.rank, n, shared_seed + 7 * n);
    comm.all_gather(mine.data(), gathered.data(), n, DType::kF32);
    bool gok = true;
    for (int r = 0; r < P; ++r) {
      auto o = rank_data(r, n, shared_seed + 7 * n);
      gok = gok && std::equal(o.begin(), o.end(), gathered.begin() + r * n);
    }
    bad += check(gok, "all_gather", ctx.rank);

    const int root = static_cast<int>(n % P);
    auto bc = rank_data(ctx.rank, n, shared_seed + 11 * n);
    comm.broadcast(bc.data(), n, DType::kF32, root);
    bad += check(bc == rank_data(root, n, shared_seed + 11 * n), "broadcast", ctx.rank);
    comm.barrier();
  }
  // Non-integer data: every rank must still end with identical bits (checked through a gather).
  for (size_t n : {size_t{777}, size_t{50001}}) {
    std::mt19937 rng(static_cast<uint32_t>(shared_seed) + ctx.rank);
    std::normal_distribution<float> d;
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    comm.all_reduce_sum(v.data(), n, DType::kF32);
    std::vector<float> all(n * P);
    comm.all_gather(v.data(), all.data(), n, DType::kF32);
    bool same = true;
    for (int r = 0; r < P; ++r) same = same && std::memcmp(all.data() + r * n, v.data(), n * 4) == 0;
    bad += check(same, "identical bits on every rank", ctx.rank);
  }
  // Variable-length messages from rank 0 (how StepPlans travel).
  for (size_t len : {size_t{0}, size_t{17}, size_t{300000}}) {
    std::vector<uint8_t> msg(len);
    for (size_t i = 0; i < len; ++i) msg[i] = static_cast<uint8_t>(i * 31 + len);
    if (ctx.rank == 0) {
      comm.send_message_to_all(msg);
    } else {
      bad += check(comm.receive_message(0, 1 << 20, std::chrono::milliseconds(10000)) == msg, "message", ctx.rank);
    }
  }
  g->shutdown();
  return bad;
}

TEST(UcxCommunicator, CollectivesAreExactAcrossTwoProcesses) {
  auto codes = testing::run_forked_ranks(2, collectives_body);
  EXPECT_EQ(codes, std::vector<int>(2, 0));
}

TEST(UcxCommunicator, CollectivesAreExactAcrossFourProcesses) {
  auto codes = testing::run_forked_ranks(4, collectives_body);
  EXPECT_EQ(codes, std::vector<int>(4, 0));
}

TEST(UcxCommunicator, OversizedMessageIsRefusedNotAllocated) {
  auto codes = testing::run_forked_ranks(2, [](RankContext& ctx) {
    auto g = testing::join_test_group(ctx);
    if (ctx.rank == 0) {
      std::vector<uint8_t> big(4096, 7);
      try {
        g->comm().send_message_to_all(big);
      } catch (const Error&) {
      }
      // Stay until rank 1 has judged the message and left (its exit closes the control channel).
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!g->health().failed() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return 0;
    }
    try {
      g->comm().receive_message(0, 1024, std::chrono::milliseconds(10000));
    } catch (const Error& e) {
      return e.code() == ErrorCode::kDataLoss && std::string(e.what()).find("4096") != std::string::npos ? 0 : 1;
    }
    return 1;
  });
  EXPECT_EQ(codes, std::vector<int>(2, 0));
}

}  // namespace
}  // namespace tessera::parallel
