// AddedVocabulary: the added and special tokens of tokenizer.json, found in the input before
// pre-tokenization exactly as Hugging Face tokenizers does (leftmost-longest; first the tokens with
// normalized=false on the raw text, then the normalized ones on each normalized piece; honouring
// lstrip, rstrip and single_word). It must never split inside a multi-byte character.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/types.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/string_map.h"

namespace tessera::tok {

struct AddedToken {
  std::string content;
  TokenId id = -1;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

// One part of the input after extraction: either a matched token, or text to pre-tokenize.
struct InputPart {
  TokenId token = -1;     // >= 0 when this part is an added token
  std::string text;       // the (normalized) text otherwise
  bool at_start = false;  // the part begins at offset 0 of the input
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  // `tokens` from tokenizer.json's added_tokens; patterns of normalized tokens go through `normalizer`.
  void build(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // Splits `text` into parts; text parts are normalized by `normalizer` (may be null).
  void extract(std::string_view text, const Normalizer* normalizer, std::vector<InputPart>& out) const;

  const AddedToken* find_by_id(TokenId id) const;
  const AddedToken* find_by_content(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // A byte trie over token patterns; FlatU64Map keyed by (node << 8 | byte).
  struct Trie {
    FlatU64Map<int32_t> edges;
    std::vector<int32_t> terminal;  // node -> token index, -1 when none
    bool first_byte[256] = {};
    bool empty() const { return terminal.size() <= 1; }
    void add(std::string_view pattern, int32_t token_index);
    // Leftmost-longest non-overlapping matches: (start, end, token index).
    void find_all(std::string_view text, std::vector<std::tuple<size_t, size_t, int32_t>>& out) const;
  };
  // Cuts `text` at the matches of `trie`, applying each token's strip/word rules.
  void split(std::string_view text, const Trie& trie, bool at_start, std::vector<InputPart>& out) const;

  std::vector<AddedToken> tokens_;
  StringMap<size_t> by_content_;
  std::vector<int32_t> by_id_;  // id -> index into tokens_, -1 when none
  Trie raw_trie_, normalized_trie_;
};

// Parses tokenizer.json's added_tokens array; throws Error(kDataLoss) on a malformed entry.
std::vector<AddedToken> parse_added_tokens(const nlohmann::json& array);

}  // namespace tessera::tok
