// TextDecoder: turns one choice's growing token ids into streamed text (whole UTF-8 only). The
// engine's core sees only this interface and a factory, so a token-only engine (no tokenizer)
// links without the tokenizer library. It must never hold engine or scheduler state.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>

#include "scheduler/types.h"

namespace tessera {

class Tokenizer;

class TextDecoder {
 public:
  virtual ~TextDecoder() = default;
  virtual std::string push(TokenId id) = 0;  // text that became final
  virtual std::string finish() = 0;          // whatever is still held back
};

// Makes one decoder per choice, primed with the prompt so the first output token decodes in context.
using TextDecoderFactory =
    std::function<std::unique_ptr<TextDecoder>(std::span<const TokenId> prompt, bool skip_special_tokens)>;

// A factory over tessera::IncrementalDecoder (tokenizer/tokenizer.h).
TextDecoderFactory make_tokenizer_text_decoder_factory(std::shared_ptr<const Tokenizer> tokenizer);

}  // namespace tessera
