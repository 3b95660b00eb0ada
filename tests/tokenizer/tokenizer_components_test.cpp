// Tokenizer components with Hugging Face tokenizers' documented semantics, on small tokenizer.json
// files: added-token lstrip/rstrip/single_word/normalized and leftmost-longest matching, unk fusing,
// byte fallback (and its decoder's one-U+FFFD-per-byte rule), Metaspace prepend schemes, Digits,
// and every split behavior.
#include <gtest/gtest.h>

#include "tests/tokenizer/temp_tokenizer.h"
#include "tokenizer/split_behavior.h"
#include "tokenizer/text_pattern.h"

#include <nlohmann/json.hpp>

namespace tessera {
namespace {

using Ids = std::vector<TokenId>;

std::string added_tokens_tokenizer(bool fuse_unk) {
  return R"({"added_tokens":[
    {"id":10,"content":"[L]","lstrip":true,"rstrip":false,"single_word":false,"normalized":false,"special":true},
    {"id":11,"content":"[R]","lstrip":false,"rstrip":true,"single_word":false,"normalized":false,"special":true},
    {"id":12,"content":"[W]","lstrip":false,"rstrip":false,"single_word":true,"normalized":false,"special":false},
    {"id":13,"content":"[LONG]","lstrip":false,"rstrip":false,"single_word":false,"normalized":false,"special":true},
    {"id":14,"content":"[LO","lstrip":false,"rstrip":false,"single_word":false,"normalized":false,"special":false},
    {"id":15,"content":"xa","lstrip":false,"rstrip":false,"single_word":false,"normalized":true,"special":false}],
   "normalizer":{"type":"Replace","pattern":{"String":"x"},"content":"a"},
   "pre_tokenizer":null,"post_processor":null,"decoder":{"type":"Fuse"},
   "model":{"type":"BPE","unk_token":"<unk>","fuse_unk":)" +
         std::string(fuse_unk ? "true" : "false") + R"(,"byte_fallback":true,
     "vocab":{"a":0,"b":1," ":2,"<unk>":3,"ab":4,"<0xC3>":20,"<0xA9>":21},"merges":["a b"]}})";
}

TEST(TokenizerComponents, AddedTokenStripAndWordRules) {
  test::TempTokenizer tok(added_tokens_tokenizer(true));
  EXPECT_EQ(tok->encode("a  [L]b"), (Ids{0, 10, 1}));        // lstrip takes the spaces before
  EXPECT_EQ(tok->encode("a[R]  b"), (Ids{0, 11, 1}));        // rstrip takes the spaces after
  EXPECT_EQ(tok->encode("a [W] b"), (Ids{0, 2, 12, 2, 1}));  // a single word
  EXPECT_EQ(tok->encode("a[W]b"), (Ids{0, 3, 1}));           // inside a word: not a token; unknowns fuse
  EXPECT_EQ(tok->encode("[LONG][LO"), (Ids{13, 14}));        // leftmost-longest
  EXPECT_EQ(tok->encode("xx"), (Ids{15}));                   // normalized token matches normalized text
  EXPECT_EQ(tok->encode("xb"), (Ids{4}));
}

TEST(TokenizerComponents, UnknownsFuseOnlyWhenAsked) {
  test::TempTokenizer tok(added_tokens_tokenizer(false));
  EXPECT_EQ(tok->encode("a[W]b"), (Ids{0, 3, 3, 3, 1}));
}

TEST(TokenizerComponents, ByteFallbackEncodesAndDecodesPerHfRules) {
  test::TempTokenizer tok(added_tokens_tokenizer(true));
  EXPECT_EQ(tok->encode("\xC3\xA9"), (Ids{20, 21}));  // é: both bytes have tokens
  EXPECT_EQ(tok->encode("\xC3\xBC"), (Ids{3}));       // ü: 0xBC has none -> unk
  auto decoder_tok = test::TempTokenizer(R"({"added_tokens":[],"normalizer":null,"pre_tokenizer":null,
    "post_processor":null,"decoder":{"type":"Sequence","decoders":[{"type":"ByteFallback"},{"type":"Fuse"}]},
    "model":{"type":"BPE","byte_fallback":true,"vocab":{"a":0,"<0xC3>":1,"<0xA9>":2},"merges":[]}})");
  EXPECT_EQ(decoder_tok->decode(Ids{1, 2, 0}), "\xC3\xA9" "a");
  // An invalid run becomes one U+FFFD per byte (not per maximal subpart).
  EXPECT_EQ(decoder_tok->decode(Ids{1, 2, 1}), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(decoder_tok->decode(Ids{0, 1}), "a\xEF\xBF\xBD");
}

std::string metaspace_tokenizer(const std::string& scheme) {
  return R"({"added_tokens":[{"id":4,"content":"<s>","special":true,"normalized":false}],
    "normalizer":null,
    "pre_tokenizer":{"type":"Metaspace","replacement":"\u2581","prepend_scheme":")" +
         scheme + R"(","split":true},
    "post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},
      {"Sequence":{"id":"A","type_id":0}}],"pair":[],"special_tokens":{"<s>":{"id":"<s>","ids":[4],"tokens":["<s>"]}}},
    "decoder":{"type":"Metaspace","replacement":"\u2581","prepend_scheme":")" +
         scheme + R"(","split":true},
    "model":{"type":"BPE","vocab":{"\u2581":0,"a":1,"b":2,"\u2581a":3,"<s>":4},"merges":["\u2581 a"]}})";
}

TEST(TokenizerComponents, MetaspacePrependSchemes) {
  test::TempTokenizer first(metaspace_tokenizer("first"));
  EXPECT_EQ(first->encode("a a"), (Ids{4, 3, 3}));
  EXPECT_EQ(first->encode("<s>a b", false), (Ids{4, 1, 0, 2}));  // not at the start: no prefix
  EXPECT_EQ(first->encode("a a", false), (Ids{3, 3}));
  EXPECT_EQ(first->decode(Ids{3, 0, 2}), "a b");
  test::TempTokenizer always(metaspace_tokenizer("always"));
  EXPECT_EQ(always->encode("<s>a b", false), (Ids{4, 3, 0, 2}));
  test::TempTokenizer never(metaspace_tokenizer("never"));
  EXPECT_EQ(never->encode("a a", false), (Ids{1, 3}));
  EXPECT_EQ(never->decode(Ids{3, 0, 2}), " a b");
}

std::string digits_tokenizer(bool individual) {
  return R"({"added_tokens":[],"normalizer":null,"post_processor":null,"decoder":null,
    "pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":)" +
         std::string(individual ? "true" : "false") + R"(}]},
    "model":{"type":"BPE","vocab":{"1":0,"2":1,"3":2,"12":3,"a":4,"23":5},"merges":["1 2","2 3"]}})";
}

TEST(TokenizerComponents, DigitsSplitting) {
  test::TempTokenizer grouped(digits_tokenizer(false));
  EXPECT_EQ(grouped->encode("a123"), (Ids{4, 3, 2}));
  test::TempTokenizer individual(digits_tokenizer(true));
  EXPECT_EQ(individual->encode("a123"), (Ids{4, 0, 1, 2}));
  EXPECT_EQ(individual->decode(Ids{4, 0}), "a 1");  // no decoder: tokens joined by spaces
}

std::vector<std::string> split_with(tok::SplitBehavior behavior, bool invert = false) {
  const std::string text = "the-final--countdown";
  tok::TextPattern pattern(nlohmann::json{{"String", "-"}});
  std::vector<tok::Match> matches, ranges;
  pattern.find_all(text, matches);
  std::vector<tok::Segment> segs;
  tok::segments_from_matches(text.size(), matches, invert, segs);
  tok::apply_split_behavior(segs, behavior, ranges);
  std::vector<std::string> out;
  for (const auto& r : ranges) out.push_back(text.substr(r.start, r.end - r.start));
  return out;
}

TEST(TokenizerComponents, SplitBehaviorsMatchTheTokenizersDocs) {
  using V = std::vector<std::string>;
  EXPECT_EQ(split_with(tok::SplitBehavior::kRemoved), (V{"the", "final", "countdown"}));
  EXPECT_EQ(split_with(tok::SplitBehavior::kIsolated), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split_with(tok::SplitBehavior::kMergedWithPrevious), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split_with(tok::SplitBehavior::kMergedWithNext), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split_with(tok::SplitBehavior::kContiguous), (V{"the", "-", "final", "--", "countdown"}));
  // Inverted: the text between delimiters is the match and is removed; each "-" is its own piece.
  EXPECT_EQ(split_with(tok::SplitBehavior::kRemoved, true), (V{"-", "-", "-"}));
}

TEST(TokenizerComponents, StripAndReplaceDecoders) {
  test::TempTokenizer tok(R"({"added_tokens":[],"normalizer":null,"pre_tokenizer":null,"post_processor":null,
    "decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"_"},"content":" "},
      {"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":2}]},
    "model":{"type":"BPE","vocab":{"_a":0,"_":1,"b":2},"merges":[]}})");
  EXPECT_EQ(tok->decode(Ids{1, 1, 0, 2, 1, 1, 1}), "  ab ");  // one leading, two trailing spaces cut
}

}  // namespace
}  // namespace tessera
