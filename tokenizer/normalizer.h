// Normalizers of tokenizer.json ("normalizer"): NFC, NFD, NFKC, NFKD, Replace, Prepend, Strip and
// Sequence, with the semantics of Hugging Face tokenizers. Each rewrites one piece of text in place.
// It must never see invalid UTF-8 and never change text it was not configured to change.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>

namespace tessera::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

// Builds the normalizer described by `config`; null gives nullptr. Unknown types throw
// Error(kUnimplemented) naming the type.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& config);

}  // namespace tessera::tok
