// UTF-8 validation accepts every well-formed sequence and names the offset of ill-formed ones.
#include <gtest/gtest.h>

#include "server/utf8.h"

namespace tessera::server {
namespace {

TEST(Utf8, AcceptsWellFormedText) {
  EXPECT_FALSE(find_invalid_utf8("").has_value());
  EXPECT_FALSE(find_invalid_utf8("plain ascii").has_value());
  EXPECT_FALSE(find_invalid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf").has_value());
}

TEST(Utf8, NamesTheOffsetOfIllFormedSequences) {
  EXPECT_EQ(find_invalid_utf8("ab\xff"), 2u);
  EXPECT_EQ(find_invalid_utf8("\x80"), 0u);                   // lone continuation
  EXPECT_EQ(find_invalid_utf8("x\xc0\xaf"), 1u);              // overlong '/'
  EXPECT_EQ(find_invalid_utf8("\xe0\x80\xaf"), 0u);           // overlong 3-byte
  EXPECT_EQ(find_invalid_utf8("\xed\xa0\x80"), 0u);           // UTF-16 surrogate
  EXPECT_EQ(find_invalid_utf8("\xf4\x90\x80\x80"), 0u);       // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("ok\xe2\x82"), 2u);             // truncated at the end
  EXPECT_EQ(find_invalid_utf8("\xe2\x28\xa1"), 0u);           // bad continuation
}

}  // namespace
}  // namespace tessera::server
