// Errors carry their code and a formatted message naming the value seen.
#include "common/error.h"

#include <gtest/gtest.h>

namespace tessera {

TEST(Error, CheckThrowsWithCodeAndFormattedMessage) {
  int seen = 7;
  try {
    TS_CHECK(seen < 5, kInvalidArgument, "x must be below 5, got {}", seen);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_STREQ(e.what(), "x must be below 5, got 7");
  }
}

TEST(Error, AssertNamesFileLineAndCondition) {
  try {
    TS_ASSERT(1 + 1 == 3, "math is {}", "broken");
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInternal);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("error_test.cpp"), std::string::npos) << msg;
    EXPECT_NE(msg.find("1 + 1 == 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("math is broken"), std::string::npos) << msg;
  }
}

TEST(Error, CodeNamesAreDistinct) {
  EXPECT_STREQ(error_code_name(ErrorCode::kResourceExhausted), "resource_exhausted");
  EXPECT_STRNE(error_code_name(ErrorCode::kUnavailable), error_code_name(ErrorCode::kInternal));
}

}  // namespace tessera
