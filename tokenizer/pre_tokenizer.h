// Pre-tokenizers of tokenizer.json ("pre_tokenizer"): Split, ByteLevel, Metaspace, Digits and
// Sequence, with Hugging Face tokenizers' semantics. Each cuts every piece into smaller pieces
// (and may rewrite them, as ByteLevel does). It must never drop or reorder text it does not remove.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>
#include <vector>

namespace tessera::tok {

struct Piece {
  std::string text;
  bool at_start = false;  // the piece begins at offset 0 of the original input (Metaspace "first")
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

// Builds the pre-tokenizer described by `config`; null gives nullptr. Unknown types throw
// Error(kUnimplemented) naming the type.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& config);

}  // namespace tessera::tok
