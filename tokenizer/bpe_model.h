// BpeModel: the "BPE" model of tokenizer.json. Turns one pre-tokenized word into token ids exactly
// as Hugging Face tokenizers does (lowest-rank merge first, leftmost on ties; ignore_merges,
// byte_fallback, unk_token, fuse_unk, continuing_subword_prefix, end_of_word_suffix), with a
// bounded per-word cache. Thread-safe. It must never produce an id outside its vocabulary.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/types.h"
#include "tokenizer/string_map.h"
#include "tokenizer/tokenizer_json_reader.h"

namespace tessera::tok {

class BpeModel {
 public:
  // Throws Error(kUnimplemented) for a model type other than BPE (or with dropout), kDataLoss
  // for a malformed vocabulary or merge list.
  // `model` is tokenizer.json's model object (its options); `tables` its vocabulary and merges.
  BpeModel(const nlohmann::json& model, BpeTables tables);

  // Appends the ids of `word` to `out`. Throws Error(kInvalidArgument) when a character is not in
  // the vocabulary and there is neither byte fallback nor an unknown token.
  void tokenize(std::string_view word, std::vector<TokenId>& out) const;

  std::optional<TokenId> token_to_id(std::string_view token) const;
  const std::string* id_to_token(TokenId id) const;  // nullptr when the id has no token
  size_t vocab_end() const { return id_to_token_.size(); }  // max id + 1

  size_t cache_size() const;

 private:
  struct MergeTarget {
    uint32_t rank;
    TokenId id;
  };
  void merge_word(std::string_view word, std::vector<TokenId>& out) const;
  void initial_symbols(std::string_view word, std::vector<TokenId>& ids) const;
  std::optional<TokenId> char_id(std::string_view ch) const;

  StringMap<TokenId> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_token_;
  FlatU64Map<MergeTarget> merges_;
  std::vector<TokenId> bmp_char_ids_;  // code point < 0x10000 -> id of that one-character token, -1 if none
  std::array<TokenId, 256> byte_fallback_ids_{};
  bool has_all_byte_fallback_ = false;
  std::optional<TokenId> unk_id_;
  std::string unk_token_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string prefix_;  // continuing_subword_prefix
  std::string suffix_;  // end_of_word_suffix

  static constexpr size_t kMaxCachedWordBytes = 256;
  static constexpr size_t kMaxCacheEntries = 200000;
  mutable std::mutex cache_mutex_;
  mutable StringMap<std::vector<TokenId>> cache_;
};

}  // namespace tessera::tok
