// UTF-8 validation accepts every well-formed sequence and names the offset of ill-formed ones.
#include <gtest/gtest.h>

#include "common/utf8.h"

namespace tessera {
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

TEST(Utf8, DecodeOfUnvalidatedTextGivesReplacementForIllFormedBytes) {
  size_t len = 0;
  EXPECT_EQ(utf8_decode("\xf0\x9f\x98\x80", 0, len), U'\U0001F600');
  EXPECT_EQ(len, 4u);
  EXPECT_EQ(utf8_decode("\xe2\x82", 0, len), U'\uFFFD');  // truncated
  EXPECT_EQ(len, 1u);
  EXPECT_EQ(utf8_decode("\xed\xa0\x80", 0, len), U'\uFFFD');  // surrogate
  EXPECT_EQ(len, 1u);
  EXPECT_EQ(utf8_decode("\xc0\xaf", 0, len), U'\uFFFD');  // overlong
  EXPECT_EQ(len, 1u);
}

TEST(Utf8, AppendNeverWritesSurrogatesOrValuesAboveTheUnicodeRange) {
  std::string out;
  utf8_append(out, 0xD800);
  utf8_append(out, 0x110000);
  utf8_append(out, U'\u00e9');
  EXPECT_EQ(out, "\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9");
  EXPECT_FALSE(find_invalid_utf8(out).has_value());
}

TEST(Utf8, LossyDecodingReplacesEachMaximalIllFormedSubpart) {
  EXPECT_EQ(utf8_lossy("a\xf0\x9f\x98" "b"), "a\xef\xbf\xbd" "b");
  EXPECT_EQ(utf8_lossy("\xff\xfe"), "\xef\xbf\xbd\xef\xbf\xbd");
}

}  // namespace
}  // namespace tessera
