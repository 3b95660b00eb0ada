// Safetensors header parsing: validates the 8-byte length, the JSON header and every tensor entry
// (dtype, shape, data_offsets) against the size of the file, overflow-safe, before anything is read
// through them. Pure function over bytes (the fuzz target drives it directly).
// It must never read past `file_size`, trust an offset it has not checked, or abort on bad input:
// every failure is tessera::Error(kDataLoss) naming the file and the tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/dtype.h"

namespace tessera {

struct SafetensorsEntry {
  std::string name;
  std::string dtype_name;        // as written: "BF16", "F16", "F32", or another safetensors type
  std::optional<DType> dtype;    // set for the types Tessera computes with
  std::vector<int64_t> shape;
  uint64_t num_elements = 0;
  uint64_t offset = 0;           // from the start of the file (header already added), checked
  uint64_t size_bytes = 0;       // data_offsets[1] - data_offsets[0], == num_elements * element size
};

struct SafetensorsHeader {
  uint64_t data_start = 0;               // 8 + header length
  std::vector<SafetensorsEntry> tensors; // sorted by name
};

// Largest JSON header accepted (the format's own limit is 100 MB).
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

// `bytes` holds the first min(file_size, 8 + header length) bytes of the file; `file_size` is the
// whole file's size. `label` names the file in errors.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t available, uint64_t file_size,
                                           const std::string& label);

}  // namespace tessera
