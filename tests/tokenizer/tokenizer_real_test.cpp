// Encode/decode behaviour on the real tokenizers that the parity corpus does not pin down: invalid
// UTF-8 and out-of-range ids are clear errors, special-token switches, lossless byte-level round
// trips, and identical results from many threads at once.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "common/error.h"
#include "tests/tokenizer/real_tokenizers.h"

namespace tessera {
namespace {

using Ids = std::vector<TokenId>;

std::string error_message(const std::function<void()>& f, ErrorCode expected) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), expected) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error thrown";
  return {};
}

TEST(TokenizerReal, InvalidUtf8NamesTheByteOffset) {
  auto tok = test::real_tokenizer("qwen3");
  const std::pair<std::string, size_t> cases[] = {
      {"ab\xC3(", 2},             // lead byte without continuation
      {"hello \xC0\xAF", 6},      // overlong encoding
      {"x\xED\xA0\x80", 1},       // UTF-16 surrogate
      {"abc\xE4\xBD", 3},         // truncated at the end
      {"\xF5\x80\x80\x80", 0},    // beyond U+10FFFF
      {"ok \xF0\x9F\x98\x80 \x80", 8},  // stray continuation byte after a valid emoji
  };
  for (const auto& [text, offset] : cases) {
    auto msg = error_message([&] { tok->encode(text); }, ErrorCode::kInvalidArgument);
    EXPECT_NE(msg.find("byte offset " + std::to_string(offset)), std::string::npos) << msg;
  }
  // The tokenizer keeps working afterwards.
  EXPECT_EQ(tok->encode("hello"), (Ids{14990}));
}

TEST(TokenizerReal, OutOfRangeIdsAreInvalidArgument) {
  auto tok = test::real_tokenizer("llama2");
  auto msg = error_message([&] { tok->decode(Ids{1, 32000}); }, ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("32000"), std::string::npos) << msg;
  error_message([&] { tok->decode(Ids{-1}); }, ErrorCode::kInvalidArgument);
}

TEST(TokenizerReal, SpecialTokenSwitches) {
  auto llama2 = test::real_tokenizer("llama2");
  EXPECT_EQ(llama2->encode(""), (Ids{1}));
  EXPECT_EQ(llama2->encode("", false), (Ids{}));
  auto with = llama2->encode("Hello");
  auto without = llama2->encode("Hello", false);
  ASSERT_EQ(with.size(), without.size() + 1);
  EXPECT_EQ(with[0], 1);
  EXPECT_EQ(llama2->decode(with, false), "<s> Hello");
  EXPECT_EQ(llama2->decode(with, true), "Hello");

  auto qwen = test::real_tokenizer("qwen3");
  auto ids = qwen->encode("<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(ids.front(), 151644);
  EXPECT_EQ(ids.back(), 151645);
  EXPECT_EQ(qwen->decode(ids, true), "user\nhi");
  EXPECT_EQ(qwen->decode(ids, false), "<|im_start|>user\nhi<|im_end|>");
}

// Llama 3 has no normalizer and a byte-level model, so decode(encode(x)) == x for any valid text.
TEST(TokenizerReal, ByteLevelRoundTripIsLossless) {
  auto tok = test::real_tokenizer("llama3");
  std::mt19937 rng(7);
  const char32_t ranges[][2] = {{0x20, 0x7e}, {0xa0, 0x24f}, {0x4e00, 0x4fff}, {0x1f600, 0x1f64f}, {0x0600, 0x06ff}};
  for (int n = 0; n < 200; ++n) {
    std::string text;
    int len = 1 + static_cast<int>(rng() % 60);
    for (int i = 0; i < len; ++i) {
      if (rng() % 5 == 0) {
        text += " \n\t"[rng() % 3];
        continue;
      }
      const auto& r = ranges[rng() % 5];
      char32_t cp = r[0] + rng() % (r[1] - r[0] + 1);
      // UTF-8 encode
      if (cp < 0x80) {
        text += static_cast<char>(cp);
      } else if (cp < 0x800) {
        text += static_cast<char>(0xC0 | (cp >> 6));
        text += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        text += static_cast<char>(0xE0 | (cp >> 12));
        text += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        text += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        text += static_cast<char>(0xF0 | (cp >> 18));
        text += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        text += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        text += static_cast<char>(0x80 | (cp & 0x3F));
      }
    }
    EXPECT_EQ(tok->decode(tok->encode(text)), text);
  }
}

TEST(TokenizerReal, ConcurrentEncodesAgreeWithSequential) {
  auto tok = test::real_tokenizer("deepseek_v3");
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i)
    texts.push_back("Request " + std::to_string(i * 7919) + ": 你好世界 and some English words, repeated " +
                    std::string(static_cast<size_t>(i % 9), ' ') + "tail" + std::to_string(i));
  std::vector<Ids> expected;
  for (const auto& t : texts) expected.push_back(tok->encode(t));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int rep = 0; rep < 5; ++rep)
        for (size_t i = 0; i < texts.size(); ++i)
          if (tok->encode(texts[(i + static_cast<size_t>(w)) % texts.size()]) != expected[(i + static_cast<size_t>(w)) % texts.size()])
            ++mismatches[w];
    });
  }
  for (auto& t : threads) t.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace tessera
