// The MLP's gate/up projection with the SwiGLU epilogue on Hopper warpgroup MMA (sm_90a), for prefill-
// sized steps: act[m, inter] = bf16(silu(g) * u) with g = bf16(x · gateᵀ), u = bf16(x · upᵀ) (fp32
// accumulation; g and u rounded to bf16 first, as cuBLASLt's bf16 product followed by silu_mul does),
// w = [gate; up] ([2 x inter, k], the nn.Linear layout). The gate/up product never reaches memory.
// A persistent block per SM walks 128-row x 128-column tiles of act (rows fastest, so each weight
// column group streams once while x stays in L2); a producer warp copies x and the 128 gate and 128 up
// rows of w by TMA into a 4-stage ring; two consumer warpgroups multiply 64 rows each against all 256
// stacked rows with wgmma m64n256k16, so a thread holds gate column c and up column c + 128 and the
// epilogue is register-local. Never allocates, never reads configuration; the host never launches it
// off compute capability 9.0 (gemm_swiglu_supported), and every other target compiles a body that traps.
#pragma once

#include <cuda.h>  // CUtensorMap
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::cuda {

constexpr int32_t kSwigluTileRows = 128;  // rows of x per tile
constexpr int32_t kSwigluTileCols = 128;  // columns of act per tile: inter must be a multiple
constexpr int32_t kSwigluStageK = 64;     // k per stage: k must be a multiple
// Variants (kSwigluVariantShapes): blocks per cluster, whether act is computed by epilogue warps, and
// the persistent grid. ctas 2: clusters of two blocks on row tiles 2q, 2q + 1 sharing each weight tile
// (TMA multicast); ctas 4: 2 x 2 clusters, also sharing each x tile between column tiles 2p, 2p + 1 (a
// quarter less L2 -> SM traffic than ctas 2); ctas 1: single blocks. Epilogue warps: act computed by
// epilogue warps from a staged tile while the consumers go on (3 stages), else by the consumers from
// their registers (4 stages). Balanced grid: the fewest clusters that take the tiles in as many waves as
// the most resident clusters would (4,096 x 14,336, ctas 2: 64 clusters in 28 waves instead of 66 in
// 27.2: the same time on fewer SMs, less power at the cap), else as many as are resident. All store the
// same bits.
// Measured on nvidia-h200 (docs/CUDA.md, session 10) at 4,096 x 4,096 -> 2 x 14,336, burst: 1,341 /
// 1,336 / 1,269 / 1,331 µs for variants 0-3 against 1,305 for cuBLASLt + silu_mul (sustained at the
// power cap 1,568 / 1,545 / 1,485 / 1,531 against 1,495). The clusters ran at half speed while each
// consumer warp released a stage with a cluster-scope release (mbarrier.arrive.release.cluster) in
// both blocks; the arrival at the default CTA scope is enough (the wgmmas that read the stage have
// completed) and brought them to the figures above. Gemm times every variant per row bucket.
// Session 10 (branch gemm10b, two calls): variants 2 / 4 / 5 burst 1,241-1,257 / 1,278-1,282 /
// 1,231-1,235 µs, sustained 1,463 / 1,526-1,529 / 1,456-1,466 (cuBLASLt's product alone 1,175-1,195 /
// 1,407-1,409). Variant 4 runs only 30 clusters of four (120 SMs); ncu showed L2 traffic is not what
// holds the mainloop (variant 2: 3.6 points of tail, ~3.5 of bubbles inside the tiles). Variant 5 won
// 3 of 3 alternating engine prefill pairs against variant 2 (-0.28 ms mean): the default since.
// Session 11 (branch tail11): tail parts. With tail_split 2 (4) the tile groups past the last whole
// wave (groups mod clusters: 10 of 1,792 at 4,096 x 14,336 on 66 clusters) are walked as parts of 64
// (32) act columns each (64 gate + 64 up stacked weight rows, m64n128k16; 32 + 32, m64n64k16), so the
// last wave is 2 (4) times as wide and as short; the grid is as many clusters as are resident (at
// most tail_split per group); tail_ring (quarters only): the parts' 24 KiB stages in a ring of their
// own, 6 deep instead of 3. Clusters of two with epilogue warps only.
// Measured on nvidia-h200 (docs/CUDA.md, session 11), burst / sustained µs at 4,096 x 4,096 -> 2 x
// 14,336. Call 1: halves 1,245 / 1,457, quarters (variant 6) 1,241 / 1,451, variant 5 1,251 / 1,457: the
// parts ran well below their share of a tile (a quarter stage holds a quarter of a tile stage's MMAs,
// so 3 stages no longer cover the copies' latency); halves left the table. Call 2: variant 7 (the
// quarters' own ring) 1,213 / 1,441, variant 6 1,230 / 1,466, variant 5 1,231 / 1,460 (-1.4% / -1.3%
// for 7). Engine prefill 4,096 pairs against variant 5: variant 6 faster in 7 of 8 (mean -0.43 ms),
// variant 7 in 1 of 4 (+0.15 ms): within the runs' +-0.7 ms noise. Gemm times both per row bucket.
struct SwigluVariantShape {
  int ctas;             // blocks per cluster: 1, 2 (rows) or 4 (2 rows x 2 columns)
  bool epilogue_warps;  // act by the epilogue warps (3 stages) or by the consumers (4 stages)
  bool balanced_grid;   // the fewest clusters for the same number of waves
  int tail_split = 1;   // 1, or parts per tile group past the last whole wave (2 or 4: above)
  bool tail_ring = false;  // tail_split > 1: the parts in a ring of their own (above)
};
constexpr SwigluVariantShape kSwigluVariantShapes[] = {
    {2, false, false}, {1, false, false}, {2, true, false}, {1, true, false},  // session 10
    {4, true, true},  // 4: 2 x 2 clusters, epilogue warps, balanced grid
    {2, true, true},  // 5: variant 2 on the balanced grid
    {2, true, false, 4},        // 6: variant 2 with the last wave's groups in 32-column quarters
    {2, true, false, 4, true},  // 7: variant 6 with the quarters in a 6-stage ring of their own
};
constexpr int kSwigluVariants = static_cast<int>(sizeof(kSwigluVariantShapes) / sizeof(kSwigluVariantShapes[0]));
constexpr int kSwigluDefaultVariant = 5;  // clusters of two, act by the epilogue warps, balanced grid
constexpr int kSwigluTunedVariants[] = {0, 1, 2, 3, 4, 5, 6, 7};
constexpr int swiglu_variant_ctas(int variant) { return kSwigluVariantShapes[variant].ctas; }
constexpr bool swiglu_variant_epilogue_warps(int variant) { return kSwigluVariantShapes[variant].epilogue_warps; }
constexpr bool swiglu_variant_balanced_grid(int variant) { return kSwigluVariantShapes[variant].balanced_grid; }
constexpr int swiglu_variant_tail_split(int variant) { return kSwigluVariantShapes[variant].tail_split; }
constexpr bool swiglu_variant_tail_ring(int variant) { return kSwigluVariantShapes[variant].tail_ring; }
constexpr bool swiglu_2x2_variants_have_epilogue_warps() {
  for (const SwigluVariantShape& v : kSwigluVariantShapes)
    if (v.ctas == 4 && !v.epilogue_warps) return false;
  return true;
}
static_assert(swiglu_2x2_variants_have_epilogue_warps(), "the 2 x 2 cluster kernel is built with epilogue warps only");
constexpr bool swiglu_tail_parts_are_built() {
  for (const SwigluVariantShape& v : kSwigluVariantShapes)
    if ((v.tail_split != 1 &&
         ((v.tail_split != 2 && v.tail_split != 4) || v.ctas != 2 || !v.epilogue_warps || v.balanced_grid)) ||
        (v.tail_ring && v.tail_split != 4))
      return false;
  return true;
}
static_assert(swiglu_tail_parts_are_built(),
              "tail parts (2 or 4; their own ring: 4) are built for clusters of two with epilogue warps");

// Whether a device of this compute capability runs the kernel (9.0: the sm_90a build). Pure.
constexpr bool gemm_swiglu_supported(int cc_major, int cc_minor) { return cc_major == 9 && cc_minor == 0; }

// Throws tessera::Error (kInvalidArgument) naming the value when the kernel cannot take the shape:
// m < 1, inter not a positive multiple of 128, k not a positive multiple of 64, or x, w, act not
// 16-byte aligned.
void gemm_swiglu_check(const void* x, const void* w, const void* act, int32_t m, int32_t inter, int32_t k);

// act = bf16(silu(x · gateᵀ) * (x · upᵀ)) as above, after gemm_swiglu_check. Asynchronous on `stream`;
// only for a device where gemm_swiglu_supported holds (the caller checks).
// variant: one of kSwigluVariants (above; gemm_swiglu_wgmma.cu has the details), all storing the same
// bits. blocks: the persistent grid, gemm_swiglu_blocks(m' >= m, inter, variant) (callers that launch
// often compute it once: for the cluster variants it asks cudaOccupancyMaxActiveClusters, host work
// that may take longer than the kernel); 0: computed on this call. Throws tessera::Error
// (kInvalidArgument) for another variant or a block count that is not a positive number of clusters.
void gemm_swiglu(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* act, int32_t m, int32_t inter,
                 int32_t k, cudaStream_t stream, int variant = kSwigluDefaultVariant, int blocks = 0);

// The launch behind gemm_swiglu (gemm_swiglu_wgmma.cu), given the tensor maps of x ([m, k]) and w
// ([2 x inter, k]) in boxes of 128 rows (matrix_map; x in boxes of 64 rows for ctas 4), w_part_map
// (tail_split > 1: w in boxes of 128 / tail_split rows; else unused), the persistent grid's blocks (cut
// to one cluster per tile group, tail_split per group with tail parts) and the variant's blocks per
// cluster (1, 2 or 4: always with epilogue warps), epilogue, tail split (1, 2 or 4: clusters of two
// with epilogue warps) and tail ring.
void launch_gemm_swiglu(const CUtensorMap& x_map, const CUtensorMap& w_map, const CUtensorMap& w_part_map,
                        __nv_bfloat16* act, int32_t m, int32_t inter, int32_t k, int blocks, int ctas,
                        bool epilogue_warps, int tail_split, bool tail_ring, cudaStream_t stream);
// The persistent grid of a variant on a device of `sms` SMs: as many clusters as fit at once
// (cudaOccupancyMaxActiveClusters; single blocks: one per SM), at most one per tile group (tail_split
// per group with tail parts); balanced: then the fewest that take the tile groups in the same number
// of waves.
int gemm_swiglu_grid_blocks(int32_t m, int32_t inter, int sms, int ctas, bool epilogue_warps, bool balanced = false,
                            int tail_split = 1, bool tail_ring = false);
// The box rows of x's tensor map for a cluster of `ctas` blocks (each block of a 2 x 2 cluster copies
// half of its x tile into both blocks of its row).
constexpr int32_t swiglu_x_box_rows(int ctas) { return ctas == 4 ? kSwigluTileRows / 2 : kSwigluTileRows; }
// The same for gemm_swiglu's variant on the current device.
int gemm_swiglu_blocks(int32_t m, int32_t inter, int variant);

}  // namespace tessera::cuda
