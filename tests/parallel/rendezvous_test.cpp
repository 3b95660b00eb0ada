// Rendezvous refusals between real processes: a rank with another model fingerprint or world size
// is refused on both sides with a message naming the mismatch; a rank without the launch secret
// never joins (rank 0 drops it and keeps waiting for real ranks).
#include <gtest/gtest.h>

#include <string>

#include "tests/parallel/forked_ranks.h"

namespace tessera::parallel {
namespace {

using testing::RankContext;

RankGroupConfig config_for(RankContext& ctx, uint8_t model_byte, int world, std::chrono::milliseconds timeout) {
  RankGroupConfig c;
  c.rank = ctx.rank;
  c.world_size = world;
  c.rendezvous = ctx.rendezvous;
  c.fingerprint = sha256(std::vector<uint8_t>{model_byte});
  c.description = "model " + std::to_string(model_byte);
  c.rendezvous_timeout = timeout;
  return c;
}

// Returns 0 when join threw `code` with `needle` in its message.
int expect_join_error(RankContext& ctx, const RankGroupConfig& c, const LaunchSecret& secret, ErrorCode code,
                      const std::string& needle) {
  try {
    RankGroup::join(c, secret, std::move(ctx.listener));
  } catch (const Error& e) {
    const bool ok = e.code() == code && std::string(e.what()).find(needle) != std::string::npos;
    if (!ok) std::fprintf(stderr, "rank %d: unexpected %s: %s\n", ctx.rank, error_code_name(e.code()), e.what());
    return ok ? 0 : 1;
  }
  std::fprintf(stderr, "rank %d joined but should have been refused\n", ctx.rank);
  return 2;
}

TEST(Rendezvous, RankWithAnotherModelIsRefusedOnBothSides) {
  auto codes = testing::run_forked_ranks(2, [](RankContext& ctx) {
    const auto c = config_for(ctx, ctx.rank == 0 ? 1 : 2, 2, std::chrono::milliseconds(10000));
    return expect_join_error(ctx, c, testing::test_secret(), ErrorCode::kFailedPrecondition,
                             "does not run the same model as rank 0");
  });
  EXPECT_EQ(codes, std::vector<int>(2, 0));
}

TEST(Rendezvous, RankStartedForAnotherWorldSizeIsRefused) {
  auto codes = testing::run_forked_ranks(2, [](RankContext& ctx) {
    const auto c = config_for(ctx, 1, ctx.rank == 0 ? 2 : 4, std::chrono::milliseconds(10000));
    return expect_join_error(ctx, c, testing::test_secret(), ErrorCode::kFailedPrecondition,
                             "was started for 4 ranks but rank 0 runs 2");
  });
  EXPECT_EQ(codes, std::vector<int>(2, 0));
}

TEST(Rendezvous, RankWithoutTheSecretNeverJoins) {
  auto codes = testing::run_forked_ranks(2, [](RankContext& ctx) {
    const auto c = config_for(ctx, 1, 2, std::chrono::milliseconds(1500));
    if (ctx.rank == 0)
      return expect_join_error(ctx, c, testing::test_secret(), ErrorCode::kDeadlineExceeded, "no rank connected");
    return expect_join_error(ctx, c, LaunchSecret::generate(), ErrorCode::kUnavailable, "the launch secret the same");
  });
  EXPECT_EQ(codes, std::vector<int>(2, 0));
}

TEST(Rendezvous, GarbageOnTheRendezvousPortIsDropped) {
  auto codes = testing::run_forked_ranks(2, [](RankContext& ctx) {
    const auto c = config_for(ctx, 1, 2, std::chrono::milliseconds(10000));
    if (ctx.rank == 1) {
      // A stray client sends a huge length prefix first; the real rank joins afterwards.
      Fd stray = connect_tcp(parse_host_port(ctx.rendezvous), Clock::now() + std::chrono::seconds(5));
      std::vector<uint8_t> junk = {0x54, 0x53, 0x52, 0x41, 1, 0, 2, 0, 0xff, 0xff, 0xff, 0xff};
      write_all(stray, junk, Clock::now() + std::chrono::seconds(1));
    }
    auto g = RankGroup::join(c, testing::test_secret(), std::move(ctx.listener));
    g->comm().barrier();
    g->shutdown();
    return 0;
  });
  EXPECT_EQ(codes, std::vector<int>(2, 0));
}

}  // namespace
}  // namespace tessera::parallel
