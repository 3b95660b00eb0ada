// libFuzzer target over the safetensors header parser: any byte string must either parse into
// entries that lie inside the input, or throw tessera::Error(kDataLoss); never crash, hang or
// read out of bounds (ASan checks).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "common/error.h"
#include "model/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const tessera::SafetensorsHeader h = tessera::parse_safetensors_header(data, size, size, "fuzz.safetensors");
    for (const auto& t : h.tensors) {
      if (t.offset + t.size_bytes > size || t.offset < h.data_start) std::abort();
      // Touch the first and last byte the entry claims, so ASan sees any out-of-bounds view.
      if (t.size_bytes > 0) {
        volatile uint8_t a = data[t.offset];
        volatile uint8_t b = data[t.offset + t.size_bytes - 1];
        (void)a;
        (void)b;
      }
    }
  } catch (const tessera::Error& e) {
    if (e.code() != tessera::ErrorCode::kDataLoss) std::abort();
  }
  return 0;
}
