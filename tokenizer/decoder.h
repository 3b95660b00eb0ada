// Decoders of tokenizer.json ("decoder"): ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace
// and Sequence, with Hugging Face tokenizers' decode_chain semantics (the final text is the
// concatenation of the chain's output). It must never emit invalid UTF-8.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>
#include <vector>

namespace tessera::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Builds the decoder described by `config`; null gives nullptr. Unknown types throw
// Error(kUnimplemented) naming the type.
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& config);

}  // namespace tessera::tok
