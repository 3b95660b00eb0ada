// Reads tokenizer.json in one streaming (SAX) pass: the BPE vocabulary and merge list, which are
// most of the file, go straight into flat vectors; everything else becomes a small JSON document.
// This keeps loading a 10 MB tokenizer.json well under a second. It must never accept malformed
// JSON or a vocabulary entry that is not a string -> integer pair.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "scheduler/types.h"

namespace tessera::tok {

struct BpeTables {
  std::vector<std::pair<std::string, int64_t>> vocab;           // model.vocab, in file order
  std::vector<std::pair<std::string, std::string>> merges;      // model.merges, as (left, right)
};

struct TokenizerJson {
  nlohmann::json document;  // tokenizer.json with model.vocab = {} and model.merges = []
  BpeTables tables;
};

// Parses `text` (the contents of `path`, named in errors). Throws Error(kDataLoss) when malformed.
TokenizerJson read_tokenizer_json(std::string_view text, const std::string& path);

}  // namespace tessera::tok
