// StopStringMatcher: matches across pieces, holds back only possible prefixes' length, never splits UTF-8.
#include "engine/stop_string_matcher.h"

#include <gtest/gtest.h>

namespace tessera {
namespace {

std::string feed(StopStringMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += m.push(p);
  return out + m.flush();
}

TEST(StopStringMatcher, MatchAcrossPiecesCutsBeforeTheStop) {
  StopStringMatcher m({"STOP"}, false);
  EXPECT_EQ(feed(m, {"hello S", "T", "OP and more"}), "hello ");
  ASSERT_TRUE(m.matched());
  EXPECT_EQ(*m.matched(), "STOP");
  EXPECT_EQ(m.push("later"), "");
}

TEST(StopStringMatcher, IncludeStopStringKeepsIt) {
  StopStringMatcher m({"\n\n"}, true);
  EXPECT_EQ(feed(m, {"a\n", "\nb"}), "a\n\n");
}

TEST(StopStringMatcher, EarliestOfSeveralStopsWins) {
  StopStringMatcher m({"world", "lo w"}, false);
  EXPECT_EQ(feed(m, {"hello world"}), "hel");
  EXPECT_EQ(*m.matched(), "lo w");
}

TEST(StopStringMatcher, HoldsBackAtMostTheLongestStopLessOneByte) {
  StopStringMatcher m({"abc"}, false);
  EXPECT_EQ(m.push("xxab"), "xx");
  EXPECT_EQ(m.push("d"), "a");  // the tail of 2 bytes ("bd") is held back by length
  EXPECT_EQ(m.flush(), "bd");
  EXPECT_FALSE(m.matched());
}

TEST(StopStringMatcher, NeverSplitsAUtf8Character) {
  StopStringMatcher m({"zz"}, false);
  // "é" is two bytes; holding back one byte would split it, so the whole character waits.
  EXPECT_EQ(m.push("a\xC3\xA9"), "a");
  EXPECT_EQ(m.push("b"), "\xC3\xA9");
  EXPECT_EQ(m.flush(), "b");
}

TEST(StopStringMatcher, NoStopsPassesThrough) {
  StopStringMatcher m({}, false);
  EXPECT_FALSE(m.active());
  EXPECT_EQ(m.push("abc"), "abc");
}

}  // namespace
}  // namespace tessera
