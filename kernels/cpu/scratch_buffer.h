// ScratchBuffer: a grow-only, 64-byte-aligned float buffer that a kernel keeps per thread
// (thread_local) for packed operands. It allocates only when a call needs more than any earlier call
// on that thread, so steady-state calls never touch the heap. It must never shrink or be shared
// across threads except for the duration of one kernel call.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>

#include "common/error.h"

namespace tessera::cpu {

class ScratchBuffer {
 public:
  // At least `count` floats, 64-byte aligned; contents unspecified.
  float* floats(size_t count) {
    if (count > capacity_) {
      const size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
      data_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
      TS_CHECK(data_ != nullptr, kResourceExhausted, "kernel scratch: cannot allocate {} bytes", bytes);
      capacity_ = bytes / sizeof(float);
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  size_t capacity_ = 0;
};

}  // namespace tessera::cpu
