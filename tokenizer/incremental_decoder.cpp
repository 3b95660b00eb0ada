// IncrementalDecoder: streaming detokenization with the prefix/read offset technique (see
// tokenizer.h). It must never emit a piece that ends in an unfinished character.
#include <algorithm>

#include "common/error.h"
#include "tokenizer/tokenizer.h"
#include "common/utf8.h"

namespace tessera {

namespace {
constexpr size_t kPromptContextTokens = 5;  // prompt ids decoded as context for the first piece
}

IncrementalDecoder::IncrementalDecoder(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special_tokens,
                                       std::span<const TokenId> prompt_ids)
    : tokenizer_(std::move(tokenizer)), skip_special_(skip_special_tokens), ids_(prompt_ids.begin(), prompt_ids.end()) {
  TS_CHECK(tokenizer_ != nullptr, kInvalidArgument, "IncrementalDecoder needs a tokenizer");
  read_offset_ = ids_.size();
  prefix_offset_ = ids_.size() > kPromptContextTokens ? ids_.size() - kPromptContextTokens : 0;
}

std::string IncrementalDecoder::push(TokenId id) {
  TS_CHECK(id >= 0, kInvalidArgument, "token id {} is negative", id);
  // A model's vocabulary may be padded past the tokenizer's (Qwen: 151,936 rows, 151,669 tokens): a
  // padding id the model emits has no text; it adds nothing and is not kept for the context.
  if (static_cast<size_t>(id) >= tokenizer_->vocab_size()) return {};
  ids_.push_back(id);
  if (tokenizer_->is_byte_fallback_token(id)) return {};
  std::span<const TokenId> all(ids_);
  std::string prefix_text = tokenizer_->decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_);
  std::string new_text = tokenizer_->decode(all.subspan(prefix_offset_), skip_special_);
  if (new_text.size() <= prefix_text.size() || new_text.compare(0, prefix_text.size(), prefix_text) != 0) return {};
  if (std::string_view(new_text).ends_with(kReplacementChar)) return {};
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return new_text.substr(prefix_text.size());
}

std::string IncrementalDecoder::finish() {
  std::span<const TokenId> all(ids_);
  std::string prefix_text = tokenizer_->decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_);
  std::string new_text = tokenizer_->decode(all.subspan(prefix_offset_), skip_special_);
  prefix_offset_ = read_offset_ = ids_.size();
  if (new_text.size() <= prefix_text.size()) return {};
  return new_text.substr(prefix_text.size());
}

}  // namespace tessera
