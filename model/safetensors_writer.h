// Writes tensors to a .safetensors file (8-byte header length, JSON header padded to 8 bytes,
// data). Used to materialise the built-in default model; it must never write a file the reader
// would refuse (offsets are computed here, not taken from callers).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/dtype.h"

namespace tessera {

struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // product(shape) elements of dtype
};

// Throws Error(kUnavailable) when the file cannot be written.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors);

}  // namespace tessera
