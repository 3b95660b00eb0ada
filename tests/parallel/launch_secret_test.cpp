// Launch secrets: hex round trip, refusal of malformed secrets without echoing them, HMAC known
// answer (RFC 4231-style check against an independent computation), constant-time comparison.
#include <gtest/gtest.h>

#include <cstdlib>

#include "common/error.h"
#include "parallel/launch_secret.h"

namespace tessera::parallel {
namespace {

TEST(LaunchSecret, GeneratedSecretsDifferAndRoundTripThroughHex) {
  auto a = LaunchSecret::generate(), b = LaunchSecret::generate();
  EXPECT_NE(a.to_hex(), b.to_hex());
  EXPECT_EQ(a.to_hex().size(), 32u);
  EXPECT_EQ(LaunchSecret::from_hex(a.to_hex()).to_hex(), a.to_hex());
}

TEST(LaunchSecret, MalformedSecretIsRefusedWithoutEchoingIt) {
  try {
    LaunchSecret::from_hex("zz0102030405060708090a0b0c0d0e0f");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()).find("zz01"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("position 0"), std::string::npos) << e.what();
  }
  EXPECT_THROW(LaunchSecret::from_hex("abcd"), Error);
}

TEST(LaunchSecret, HmacMatchesKnownAnswer) {
  // HMAC-SHA256(key = 00..0f, "tessera") computed independently with Python's hmac module.
  auto s = LaunchSecret::from_hex("000102030405060708090a0b0c0d0e0f");
  const std::string msg = "tessera";
  const Digest d = s.mac({reinterpret_cast<const uint8_t*>(msg.data()), msg.size()});
  std::string hex;
  for (uint8_t b : d) hex += fmt::format("{:02x}", b);
  EXPECT_EQ(hex, "3adc8086cfea12faf110fc8e2199d59a4864bc808be1714ad90a637c8ec2ef98");
  Digest e = d;
  EXPECT_TRUE(digest_equal(d, e));
  e[31] ^= 1;
  EXPECT_FALSE(digest_equal(d, e));
}

TEST(LaunchSecret, ReadFromEnvironment) {
  ::setenv(kSecretEnv, "ffeeddccbbaa99887766554433221100", 1);
  auto s = LaunchSecret::from_environment();
  ::unsetenv(kSecretEnv);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->to_hex(), "ffeeddccbbaa99887766554433221100");
}

}  // namespace
}  // namespace tessera::parallel
