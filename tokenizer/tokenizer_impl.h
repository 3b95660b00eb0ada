// TokenizerImpl: the loaded pipeline behind Tokenizer (normalizer, added vocabulary,
// pre-tokenizer, BPE model, post-processor, decoder) plus tokenizer_config.json's fields.
// Immutable after loading, so one instance serves many threads. Internal to tokenizer/.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"

namespace tessera {

class TokenizerImpl {
 public:
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::BpeModel> model;
  std::unique_ptr<tok::PostProcessor> post_processor;
  std::unique_ptr<tok::Decoder> decoder;
  tok::AddedVocabulary added;
  bool decoder_has_byte_fallback = false;
  size_t vocab_size = 0;

  std::string bos_token, eos_token;
  std::optional<TokenId> bos_id, eos_id;
  std::optional<std::string> chat_template;
};

// Loads dir/tokenizer.json (+ dir/tokenizer_config.json when present). Errors as Tokenizer::from_directory.
std::unique_ptr<TokenizerImpl> load_tokenizer(const std::filesystem::path& dir);

}  // namespace tessera
