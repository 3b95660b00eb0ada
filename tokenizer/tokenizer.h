// Tokenizer: Hugging Face tokenizer.json (+ tokenizer_config.json) encode/decode with exact parity
// to the `tokenizers` library, and incremental detokenization for streaming.
// CONTRACT (the engine, server and CLI code against this header; the implementation may add, not
// change). It must never depend on the model, the scheduler or any device.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/types.h"

namespace tessera {

class TokenizerImpl;

class Tokenizer {
 public:
  // Loads dir/tokenizer.json and, when present, dir/tokenizer_config.json. Throws tessera::Error
  // (kNotFound for a missing file, kDataLoss for a corrupt one, kUnimplemented for an unsupported
  // component, naming it).
  static std::shared_ptr<Tokenizer> from_directory(const std::filesystem::path& dir);
  ~Tokenizer();

  // Like tokenizers' Tokenizer.encode(text, add_special_tokens). Invalid UTF-8 throws
  // Error(kInvalidArgument) naming the byte offset.
  std::vector<TokenId> encode(std::string_view text, bool add_special_tokens = true) const;
  // Like tokenizers' decode(ids, skip_special_tokens). Ids out of range throw kInvalidArgument.
  std::string decode(std::span<const TokenId> ids, bool skip_special_tokens = false) const;

  size_t vocab_size() const;  // including added tokens: max id + 1
  std::optional<TokenId> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(TokenId id) const;
  bool is_special(TokenId id) const;
  std::optional<TokenId> bos_token_id() const;  // from tokenizer_config.json, when given
  std::optional<TokenId> eos_token_id() const;  // from tokenizer_config.json, when given
  // The chat template of tokenizer_config.json, if any (raw Jinja source).
  const std::optional<std::string>& chat_template_source() const;
  // bos_token / eos_token strings of tokenizer_config.json (for templates); empty when absent.
  const std::string& bos_token() const;
  const std::string& eos_token() const;
  // True when decoding treats `id` as one raw byte of a ByteFallback run ("<0xAB>" tokens with a
  // ByteFallback decoder): such a run is judged valid or not as a whole, so streaming holds it back.
  bool is_byte_fallback_token(TokenId id) const;

 private:
  explicit Tokenizer(std::unique_ptr<TokenizerImpl> impl);
  std::unique_ptr<TokenizerImpl> impl_;
};

// Streams text for a growing id sequence: every piece is whole UTF-8, and the concatenation of all
// pieces (push... then finish) equals tokenizer.decode(all ids, skip_special_tokens).
// With prompt_ids, "all ids" means prompt + pushed ids, and the pieces are the text that the pushed
// ids add after decode(prompt) (e.g. a leading space a first word has in context).
// Technique: a prefix window [prefix_offset, read_offset) is decoded with and without the new ids;
// the difference is emitted only when it does not end in U+FFFD (an unfinished character) and,
// for ByteFallback tokenizers, the last id is not a raw-byte token (a byte run is validated as a
// whole by the decoder, so it is emitted once the run has ended).
class IncrementalDecoder {
 public:
  IncrementalDecoder(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special_tokens,
                     std::span<const TokenId> prompt_ids = {});
  // Adds one id; returns the text that became final (possibly empty). An id past the tokenizer's
  // vocabulary (a model's padded rows) has no text: it returns "" and is not kept. Negative: kInvalidArgument.
  std::string push(TokenId id);
  // Returns whatever is still held back (incomplete UTF-8 at the very end becomes U+FFFD, as decode does).
  std::string finish();

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  bool skip_special_;
  std::vector<TokenId> ids_;
  size_t prefix_offset_ = 0;
  size_t read_offset_ = 0;
};

}  // namespace tessera
