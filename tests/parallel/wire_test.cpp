// ByteReader refuses truncated input, over-limit counts and counts that cannot fit in the bytes
// left, before allocating.
#include <gtest/gtest.h>

#include "parallel/wire.h"

namespace tessera::parallel {
namespace {

TEST(Wire, RoundTripsScalarsLittleEndian) {
  ByteWriter w;
  w.u8(0xab);
  w.u16(0x1234);
  w.u32(0xdeadbeef);
  w.u64(0x0102030405060708ull);
  w.i32(-5);
  w.f32(1.5f);
  w.boolean(true);
  w.string("hé");
  EXPECT_EQ(w.data()[1], 0x34);  // little-endian
  ByteReader r(w.data(), "test");
  EXPECT_EQ(r.u8(), 0xab);
  EXPECT_EQ(r.u16(), 0x1234);
  EXPECT_EQ(r.u32(), 0xdeadbeefu);
  EXPECT_EQ(r.u64(), 0x0102030405060708ull);
  EXPECT_EQ(r.i32(), -5);
  EXPECT_EQ(r.f32(), 1.5f);
  EXPECT_TRUE(r.boolean());
  EXPECT_EQ(r.string(100), "hé");
  r.expect_end();
}

TEST(Wire, TruncatedInputThrowsDataLoss) {
  ByteWriter w;
  w.u32(7);
  auto bytes = w.data();
  bytes.pop_back();
  ByteReader r(bytes, "test");
  try {
    r.u32();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDataLoss);
    EXPECT_NE(std::string(e.what()).find("needs 4 more bytes"), std::string::npos) << e.what();
  }
}

TEST(Wire, HugeCountIsRefusedBeforeAllocating) {
  ByteWriter w;
  w.u64(~uint64_t{0});  // claims 2^64-1 elements
  ByteReader r(w.data(), "test");
  EXPECT_THROW(r.count(4, 1u << 30), Error);
  ByteWriter w2;
  w2.u64(1000);  // under the limit but needs 4000 bytes that are not there
  ByteReader r2(w2.data(), "test");
  EXPECT_THROW(r2.count(4, 1u << 30), Error);
  ByteWriter w3;
  w3.u64(1ull << 40);  // byte string longer than the limit
  ByteReader r3(w3.data(), "test");
  EXPECT_THROW(r3.bytes(1 << 20), Error);
}

TEST(Wire, TrailingBytesAndBadBooleansAreErrors) {
  ByteWriter w;
  w.u8(2);
  ByteReader r(w.data(), "test");
  EXPECT_THROW(r.boolean(), Error);
  ByteReader r2(w.data(), "test");
  EXPECT_THROW(r2.expect_end(), Error);
}

}  // namespace
}  // namespace tessera::parallel
