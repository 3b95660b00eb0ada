// IncrementalDecoder on the four real tokenizers: every piece is valid UTF-8 and the pieces
// concatenate to decode(all ids), for random id sequences (including byte-fallback tokens and
// multi-byte characters split across tokens) and for encoded multilingual text; with a prompt,
// the pieces are the text the generated ids add after the prompt.
#include <gtest/gtest.h>

#include <random>

#include "tests/tokenizer/real_tokenizers.h"
#include "common/error.h"
#include "common/utf8.h"

namespace tessera {
namespace {

using Ids = std::vector<TokenId>;

std::string stream(const std::shared_ptr<const Tokenizer>& tok, const Ids& ids, bool skip, const Ids& prompt = {}) {
  IncrementalDecoder dec(tok, skip, prompt);
  std::string all;
  for (TokenId id : ids) {
    auto piece = dec.push(id);
    EXPECT_FALSE(find_invalid_utf8(piece).has_value());
    all += piece;
  }
  all += dec.finish();
  return all;
}

// Ids biased toward the interesting ones: byte tokens, special tokens, tokens of multi-byte text.
Ids random_ids(const Tokenizer& tok, std::mt19937& rng, const Ids& pool) {
  Ids ids;
  size_t n = 1 + rng() % 40;
  for (size_t i = 0; i < n; ++i) {
    if (rng() % 2)
      ids.push_back(pool[rng() % pool.size()]);
    else
      ids.push_back(static_cast<TokenId>(rng() % tok.vocab_size()));
  }
  return ids;
}

Ids interesting_pool(const Tokenizer& tok) {
  Ids pool;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    if (auto id = tok.token_to_id(name)) pool.push_back(*id);
  }
  const char* texts[] = {"你好，世界！", "😀👨‍👩‍👧‍👦🇯🇵", "مرحبا", "naïve café", "  \n\t", "<|im_end|>"};
  for (const char* t : texts)
    for (TokenId id : tok.encode(t, false)) pool.push_back(id);
  for (TokenId id = 0; id < static_cast<TokenId>(tok.vocab_size()); id += 997) pool.push_back(id);
  if (auto eos = tok.eos_token_id()) pool.push_back(*eos);
  return pool;
}

class IncrementalDecoderReal : public ::testing::TestWithParam<const char*> {};

TEST_P(IncrementalDecoderReal, RandomIdsConcatenateToDecode) {
  auto tok = test::real_tokenizer(GetParam());
  std::mt19937 rng(12345);
  auto pool = interesting_pool(*tok);
  for (int n = 0; n < 150; ++n) {
    auto ids = random_ids(*tok, rng, pool);
    for (bool skip : {false, true}) {
      ASSERT_EQ(stream(tok, ids, skip), tok->decode(ids, skip)) << GetParam() << " case " << n << " skip " << skip;
    }
  }
}

TEST_P(IncrementalDecoderReal, EncodedTextStreamsBack) {
  auto tok = test::real_tokenizer(GetParam());
  const char* texts[] = {"Hello, world! Streaming text token by token.", "人工智能是计算机科学的一个分支。",
                         "Emoji 👨‍👩‍👧‍👦 and flags 🇺🇸🇯🇵 with ZWJ", "مرحبا بالعالم ١٢٣",
                         "code:\n\tif (x) {\n\t\treturn 42;\n\t}\n"};
  for (const char* t : texts) {
    auto ids = tok->encode(t, false);
    EXPECT_EQ(stream(tok, ids, false), tok->decode(ids, false)) << t;
  }
}

TEST_P(IncrementalDecoderReal, WithPromptGivesTextAfterPrompt) {
  auto tok = test::real_tokenizer(GetParam());
  std::mt19937 rng(99);
  auto pool = interesting_pool(*tok);
  auto prompt = tok->encode("Translate to French: the weather is nice today, 你好", false);
  auto prompt_text = tok->decode(prompt, false);
  for (int n = 0; n < 60; ++n) {
    auto gen = random_ids(*tok, rng, pool);
    Ids all = prompt;
    all.insert(all.end(), gen.begin(), gen.end());
    auto full = tok->decode(all, false);
    ASSERT_EQ(full.compare(0, prompt_text.size(), prompt_text), 0);
    EXPECT_EQ(stream(tok, gen, false, prompt), full.substr(prompt_text.size())) << GetParam() << " case " << n;
  }
}

// A model's vocabulary may be padded past the tokenizer's (Qwen: 151,936 rows for 151,669 tokens):
// ids there stream no text and leave the rest of the stream as if they were not there.
TEST_P(IncrementalDecoderReal, IdsPastTheVocabularyStreamNoText) {
  auto tok = test::real_tokenizer(GetParam());
  const Ids ids = tok->encode("Padding rows 你好 stream nothing", false);
  const TokenId past = static_cast<TokenId>(tok->vocab_size());
  IncrementalDecoder dec(tok, false);
  std::string all;
  for (size_t i = 0; i < ids.size(); ++i) {
    all += dec.push(ids[i]);
    EXPECT_EQ(dec.push(past + static_cast<TokenId>(i) * 97), "");
  }
  all += dec.finish();
  EXPECT_EQ(all, tok->decode(ids, false));
  EXPECT_THROW(dec.push(-1), Error);
}

INSTANTIATE_TEST_SUITE_P(AllFour, IncrementalDecoderReal, ::testing::Values("qwen3", "llama3", "llama2", "deepseek_v3"));

}  // namespace
}  // namespace tessera
