// ModelFingerprint: what every rank of a TP job must agree on before it starts: SHA-256 over the
// model's config.json, its weights manifest (each *.safetensors file's name, size and header:
// tensor names, dtypes, shapes, offsets) and the TP size. Reading headers, not weights, keeps it
// cheap for a 400 GB checkpoint while catching a different model, revision, dtype or --tp.
// It must never read tensor data, and checks each header length against the file size first.
#pragma once

#include <filesystem>
#include <string>

#include "parallel/launch_secret.h"

namespace tessera::parallel {

struct ModelFingerprint {
  Digest digest{};
  std::string description;  // e.g. "config.json sha 1a2b.., 4 weight files (16.1 GB), tp 2"
};

// Throws kNotFound when config.json is missing, kDataLoss for a truncated or oversized header.
ModelFingerprint model_fingerprint(const std::filesystem::path& model_dir, int tp_size);
// For models without a directory (built-in shapes): the fingerprint of a name and the TP size.
ModelFingerprint named_fingerprint(const std::string& name, int tp_size);

}  // namespace tessera::parallel
