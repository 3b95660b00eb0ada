// Validation of a GenerationRequest at the engine's door. The front doors validate too; the engine
// still defends itself. It must never mutate the request or touch engine state.
#pragma once

#include <cstdint>

#include "engine/engine.h"

namespace tessera {

// Throws Error(kInvalidArgument) naming the first field that is wrong and the value seen.
// vocab_size <= 0 skips the upper bound on token ids; has_text is false in a token-only engine.
void validate_request(const GenerationRequest& r, const EngineConfig& config, int64_t vocab_size, bool has_text);

}  // namespace tessera
