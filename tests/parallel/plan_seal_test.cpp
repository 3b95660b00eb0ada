// The plan channel's seal: a sealed message opens on a rank holding the same launch secret, in
// order; an altered, truncated, replayed, reordered or foreign-secret message is refused with
// kUnauthenticated before its body is looked at.
#include <gtest/gtest.h>

#include <random>

#include "common/error.h"
#include "parallel/plan_seal.h"

namespace tessera::parallel {
namespace {

std::vector<uint8_t> random_body(std::mt19937& rng, size_t n) {
  std::vector<uint8_t> b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

void expect_refused(PlanSeal& seal, const std::vector<uint8_t>& msg, const std::string& why) {
  try {
    seal.open(msg);
    ADD_FAILURE() << "opened: " << why;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnauthenticated) << why << ": " << e.what();
  }
}

TEST(PlanSeal, OpensInOrderWithTheSameSecret) {
  const LaunchSecret secret = LaunchSecret::generate();
  PlanSeal rank0(secret), rank1(secret);
  std::mt19937 rng(std::random_device{}());
  for (size_t n : {0u, 1u, 100u, 35000u}) {
    const auto body = random_body(rng, n);
    const auto msg = rank0.seal(7, body);
    EXPECT_EQ(msg.size(), n + PlanSeal::kOverhead);
    const auto opened = rank1.open(msg);
    EXPECT_EQ(opened.kind, 7);
    EXPECT_EQ(std::vector<uint8_t>(opened.body.begin(), opened.body.end()), body);
  }
}

TEST(PlanSeal, RefusesEveryAlteredByte) {
  const LaunchSecret secret = LaunchSecret::generate();
  std::mt19937 rng(std::random_device{}());
  PlanSeal rank0(secret);
  const auto msg = rank0.seal(1, random_body(rng, 64));
  for (size_t i = 0; i < msg.size(); ++i) {
    PlanSeal rank1(secret);
    auto bad = msg;
    bad[i] ^= static_cast<uint8_t>(1u << (rng() % 8));
    expect_refused(rank1, bad, "byte " + std::to_string(i) + " flipped");
  }
  PlanSeal rank1(secret);
  expect_refused(rank1, std::vector<uint8_t>(msg.begin(), msg.end() - 1), "truncated");
  expect_refused(rank1, std::vector<uint8_t>(msg.begin(), msg.begin() + 10), "shorter than the seal");
  EXPECT_NO_THROW(rank1.open(msg));  // the refusals consumed no sequence number
}

TEST(PlanSeal, RefusesReplayReorderAndAnotherSecret) {
  const LaunchSecret secret = LaunchSecret::generate();
  std::mt19937 rng(std::random_device{}());
  PlanSeal rank0(secret), rank1(secret);
  const auto first = rank0.seal(1, random_body(rng, 32));
  const auto second = rank0.seal(1, random_body(rng, 32));
  const auto third = rank0.seal(2, {});
  expect_refused(rank1, second, "second before first");
  EXPECT_NO_THROW(rank1.open(first));
  expect_refused(rank1, first, "first replayed");
  EXPECT_NO_THROW(rank1.open(second));
  EXPECT_EQ(rank1.open(third).kind, 2);

  PlanSeal stranger(LaunchSecret::generate()), rank2(secret);
  expect_refused(rank2, stranger.seal(1, random_body(rng, 32)), "sealed with another secret");
}

}  // namespace
}  // namespace tessera::parallel
