// Tensor maps (TMA descriptors) of row-major bf16 matrices, and the driver's encoder they and the
// K/V cache maps (kv_cache_tensor_map.h) are made with. Host code only: encodes descriptors, never
// allocates or launches.
#pragma once

#include <cuda.h>  // CUtensorMap (the type only: the encoder comes through the runtime)
#include <cuda_bf16.h>
#include <cudaTypedefs.h>

#include <cstdint>

namespace tessera::cuda {

// cuTensorMapEncodeTiled from the driver, looked up once (the process's driver does not change).
// Throws tessera::Error when the driver has none.
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder();

// A map of the row-major bf16 matrix at `p` ([rows, cols], row pitch cols elements), read in boxes of
// box_rows rows x 64 elements (128 bytes) with the 128-byte swizzle (16-byte chunk c of box row r
// lands at chunk c ^ (r % 8): wgmma.cuh's layout) and 256-byte L2 promotion; reads past the last row
// or column are zeros. Throws tessera::Error naming the arguments when the driver refuses them (p not
// 16-byte aligned, cols not a multiple of 8, box_rows over 256).
CUtensorMap matrix_map(const __nv_bfloat16* p, int64_t rows, int64_t cols, uint32_t box_rows);

}  // namespace tessera::cuda
