// TpProcess spawns this node's ranks as real processes (this test binary, re-entered through a
// disabled child test), hands them the secret through the environment, joins them, and reaps
// them; a multi-node placement without an operator secret is refused.
#include <gtest/gtest.h>

#include <cstdlib>

#include "parallel/tp_process.h"
#include "tests/parallel/forked_ranks.h"

namespace tessera::parallel {
namespace {

const char* real_env(const char* name) { return std::getenv(name); }

// Runs only when spawned by TpProcess (the parent passes --gtest_also_run_disabled_tests).
TEST(TpProcessChild, DISABLED_RunsAsSpawnedRank) {
  const char* rank = std::getenv(kRankEnv);
  ASSERT_NE(rank, nullptr) << "only meaningful as a spawned rank";
  auto secret = LaunchSecret::from_environment();
  ASSERT_TRUE(secret.has_value());
  RankGroupConfig c;
  c.rank = std::atoi(rank);
  c.world_size = std::atoi(std::getenv(kWorldEnv));
  c.rendezvous = std::getenv(kRendezvousEnv);
  c.fingerprint = named_fingerprint("tp-process-test", c.world_size).digest;
  c.rendezvous_timeout = std::chrono::milliseconds(20000);
  auto g = RankGroup::join(c, *secret);
  float v = static_cast<float>(c.rank + 1);
  g->comm().all_reduce_sum(&v, 1, DType::kF32);
  EXPECT_EQ(v, c.world_size * (c.world_size + 1) / 2.0f);
  g->comm().barrier();
  g->shutdown();
}

TEST(TpProcess, SpawnsLocalRanksThatJoinAndExitCleanly) {
  auto codes = testing::run_forked_ranks(1, [](testing::RankContext&) {
    ::unsetenv(kSecretEnv);
    TpProcessConfig c;
    c.options.tp = 3;
    c.options.rendezvous_timeout_s = 20;
    c.fingerprint = named_fingerprint("tp-process-test", 3);
    c.worker_args = {"--gtest_filter=TpProcessChild.DISABLED_RunsAsSpawnedRank", "--gtest_also_run_disabled_tests"};
    auto t = TpProcess::start(c, real_env);
    if (!t->is_rank0() || t->children().size() != 2 || t->shard().tp_size != 3) return 10;
    float v = 1.0f;
    t->group().comm().all_reduce_sum(&v, 1, DType::kF32);
    if (v != 6.0f) return 11;
    t->group().comm().barrier();
    t->group().shutdown();
    return t->reap(std::chrono::milliseconds(20000));
  });
  EXPECT_EQ(codes, std::vector<int>{0});
}

TEST(TpProcess, MultiNodeWithoutSecretIsRefused) {
  TpProcessConfig c;
  c.options.tp = 4;
  c.options.nnodes = 2;
  c.options.node_rank = 1;
  c.options.rendezvous = "127.0.0.1:1";
  try {
    TpProcess::start(c, [](const char*) -> const char* { return nullptr; });
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("--tp-secret-file"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera::parallel
