// TextDecoder over the tokenizer's IncrementalDecoder, and the Engine constructor that uses it.
// Kept in its own file so that only engines built with a tokenizer link the tokenizer library.
#include <memory>

#include "engine/engine.h"
#include "engine/engine_impl.h"
#include "engine/text_decoder.h"
#include "tokenizer/tokenizer.h"

namespace tessera {

namespace {

class IncrementalTextDecoder final : public TextDecoder {
 public:
  IncrementalTextDecoder(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special, std::span<const TokenId> prompt)
      : decoder_(std::move(tokenizer), skip_special, prompt) {}
  std::string push(TokenId id) override { return decoder_.push(id); }
  std::string finish() override { return decoder_.finish(); }

 private:
  IncrementalDecoder decoder_;
};

}  // namespace

TextDecoderFactory make_tokenizer_text_decoder_factory(std::shared_ptr<const Tokenizer> tokenizer) {
  if (!tokenizer) return {};
  return [tokenizer](std::span<const TokenId> prompt, bool skip_special) -> std::unique_ptr<TextDecoder> {
    return std::make_unique<IncrementalTextDecoder>(tokenizer, skip_special, prompt);
  };
}

Engine::Engine(EngineConfig config, std::unique_ptr<StepExecutor> executor, std::shared_ptr<const Tokenizer> tokenizer,
               MetricsRegistry& metrics) {
  const int64_t vocab = tokenizer ? static_cast<int64_t>(tokenizer->vocab_size()) : 0;
  impl_ = std::make_unique<EngineImpl>(std::move(config), std::move(executor),
                                       make_tokenizer_text_decoder_factory(std::move(tokenizer)), vocab, metrics);
}

}  // namespace tessera
