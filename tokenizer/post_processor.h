// Post-processors of tokenizer.json ("post_processor") for a single sequence: TemplateProcessing
// (e.g. BOS/EOS), ByteLevel (no change to ids), Bert/Roberta ([CLS] A [SEP]) and Sequence.
// Special tokens are added only when add_special_tokens is true. It must never reorder the ids.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "scheduler/types.h"

namespace tessera::tok {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<TokenId>& ids, bool add_special_tokens) const = 0;
};

// Builds the post-processor described by `config`; null gives nullptr. Unknown types throw
// Error(kUnimplemented) naming the type.
std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& config);

}  // namespace tessera::tok
