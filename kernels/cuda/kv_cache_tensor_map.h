// 2-D tensor maps (TMA descriptors) of the paged bf16 K/V caches, shared by the Hopper kernels that
// copy cache pages with the tensor-memory accelerator (attention_prefill_wgmma_split.cu,
// attention_decode_tma.cu). Host code only: encodes a descriptor, never allocates or launches.
#pragma once

#include <cuda.h>  // CUtensorMap (the type only: the encoder comes through the runtime)
#include <cuda_bf16.h>

#include <cstdint>

namespace tessera::cuda {

// A map of the cache as a 2-D bf16 tensor of rows (cache slots) of hkv * head_dim elements, read in
// boxes of 16 rows x 64 elements (128 bytes) with the 128-byte swizzle (16-byte chunk c of box row r
// lands at chunk c ^ (r % 8); wgmma.cuh's layout) and 256-byte L2 promotion. The map spans 2^31 rows
// (every slot a block table can name); kernels only address slots read from the block tables. Throws
// tessera::Error naming the arguments when the driver refuses the descriptor.
CUtensorMap cache_map(const __nv_bfloat16* cache, int32_t hkv, int32_t head_dim);

}  // namespace tessera::cuda
