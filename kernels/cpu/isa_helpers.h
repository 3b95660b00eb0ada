// Integer helpers for the files compiled with per-file ISA flags (*_avx2.cpp, *_avx512.cpp). They have
// internal linkage on purpose: those files must never instantiate a shared inline or template function
// (std::min and friends), because the linker could keep their AVX-512 copy for baseline callers.
#pragma once

#include <cstdint>

namespace tessera::cpu::detail {
namespace {

[[maybe_unused]] inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
[[maybe_unused]] inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
[[maybe_unused]] inline int64_t iclamp(int64_t v, int64_t lo, int64_t hi) { return imin(imax(v, lo), hi); }

}  // namespace
}  // namespace tessera::cpu::detail
