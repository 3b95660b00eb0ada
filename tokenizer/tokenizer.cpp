// Tokenizer: encode and decode over the loaded pipeline (see tokenizer.h, tokenizer_impl.h).
// Encode order, as in Hugging Face tokenizers: added tokens on the raw text, normalizer, added
// tokens on the normalized text, pre-tokenizer, BPE per piece, post-processor.
#include "tokenizer/tokenizer.h"

#include "common/error.h"
#include "tokenizer/tokenizer_impl.h"
#include "common/utf8.h"

namespace tessera {

std::shared_ptr<Tokenizer> Tokenizer::from_directory(const std::filesystem::path& dir) {
  return std::shared_ptr<Tokenizer>(new Tokenizer(load_tokenizer(dir)));
}

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  if (auto bad = find_invalid_utf8(text)) {
    TS_THROW(kInvalidArgument, "text to encode is not valid UTF-8: ill-formed byte 0x{:02X} at byte offset {}",
             static_cast<unsigned char>(text[*bad]), *bad);
  }
  std::vector<tok::InputPart> parts;
  impl_->added.extract(text, impl_->normalizer.get(), parts);
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<tok::Piece> pieces;
  for (auto& part : parts) {
    if (part.token >= 0) {
      ids.push_back(part.token);
      continue;
    }
    pieces.clear();
    pieces.push_back({std::move(part.text), part.at_start});
    if (impl_->pre_tokenizer) impl_->pre_tokenizer->pre_tokenize(pieces);
    for (const auto& p : pieces) impl_->model->tokenize(p.text, ids);
  }
  if (impl_->post_processor) impl_->post_processor->process(ids, add_special_tokens);
  return ids;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (TokenId id : ids) {
    TS_CHECK(id >= 0 && static_cast<size_t>(id) < impl_->vocab_size, kInvalidArgument,
             "token id {} is out of range for a vocabulary of {}", id, impl_->vocab_size);
    if (const auto* added = impl_->added.find_by_id(id)) {
      if (skip_special_tokens && added->special) continue;
      tokens.push_back(added->content);
    } else if (const auto* t = impl_->model->id_to_token(id)) {
      tokens.push_back(*t);
    }
  }
  if (!impl_->decoder) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out.push_back(' ');
      out.append(tokens[i]);
    }
    return out;
  }
  impl_->decoder->decode_chain(tokens);
  std::string out;
  for (const auto& t : tokens) out.append(t);
  return out;
}

size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<TokenId> Tokenizer::token_to_id(std::string_view token) const {
  if (const auto* t = impl_->added.find_by_content(token)) return t->id;
  return impl_->model->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(TokenId id) const {
  if (const auto* t = impl_->added.find_by_id(id)) return t->content;
  if (const auto* t = impl_->model->id_to_token(id)) return *t;
  return std::nullopt;
}

bool Tokenizer::is_special(TokenId id) const {
  const auto* t = impl_->added.find_by_id(id);
  return t && t->special;
}

std::optional<TokenId> Tokenizer::bos_token_id() const { return impl_->bos_id; }
std::optional<TokenId> Tokenizer::eos_token_id() const { return impl_->eos_id; }
const std::optional<std::string>& Tokenizer::chat_template_source() const { return impl_->chat_template; }
const std::string& Tokenizer::bos_token() const { return impl_->bos_token; }
const std::string& Tokenizer::eos_token() const { return impl_->eos_token; }

bool Tokenizer::is_byte_fallback_token(TokenId id) const {
  if (!impl_->decoder_has_byte_fallback || impl_->added.find_by_id(id)) return false;
  const auto* t = impl_->model->id_to_token(id);
  return t && t->size() == 6 && t->compare(0, 3, "<0x") == 0 && (*t)[5] == '>';
}

}  // namespace tessera
