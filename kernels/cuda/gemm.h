// Dense projections on cuBLASLt: y[m, n] = x[m, k] · w[n, k]ᵀ (the nn.Linear layout), bf16 inputs,
// fp32 accumulation, bf16 or fp32 output. For each (m, n, k, out type) the path is chosen once and
// cached: the fastest of cuBLASLt's heuristic candidates (for long steps, optionally the fastest at the
// board's power cap: set_sustained_tuning_rows), up to 8 rows the gemv variants and up to 64
// rows the skinny tensor-core kernel's (when given its workspace). Owns only the cuBLASLt handle
// and the cache; the workspace is the caller's. Not thread-safe (one per runner stream).
// Row buckets: a caller whose x and y hold more rows than m says so (row_capacity); the shape is then
// timed once at m rounded up to a power of two (at most row_capacity) and any m in that bucket takes
// the bucket's choice with no timing, so prefill chunks and mixed steps of every size do not each
// pay a tuning pass (hundreds of ms for a large m) in the middle of serving.
// Padded rows: a caller whose x and y rows past m are scratch (a decode step's buffers: nothing past
// its rows is live) says so (pad_rows); a shape of kSkinnyMaxM < m rows whose bucket holds at most
// pad_rows_up_to() rows then runs the bucket's plan over all the bucket's rows, so cuBLASLt sees full
// row tiles. On nvidia-h200 inside the decode chain the same 2 x 64-row-tile kernels ran o + down at
// 73.8 / 70.2 / 59.2 us per layer at m = 80 / 96 / 112 against 52.4 at m = 128 (docs/CUDA.md).
// The exact (fp32) mode's projections take run_f32: fp32 in and out, CUBLAS_COMPUTE_32F (never TF32),
// always cuBLASLt.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cuda/gemm_choice.h"
#include "kernels/cuda/gemm_skinny.cuh"

namespace tessera::cuda {

class Gemm {
 public:
  // skinny_workspace (optional, larger than the L2: 64 MiB in the runner): scratch the tuner overwrites
  // before each timed call so weights come from DRAM, as in a decode step. Without it the skinny
  // tensor-core kernel (m <= 64) is never a candidate (it would be timed with its weights in L2).
  Gemm(void* workspace, size_t workspace_bytes, void* skinny_workspace = nullptr, size_t skinny_bytes = 0);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // x, w bf16; y bf16 (out_f32 = false) or fp32. Must not be first called for a shape while the
  // stream is being captured into a graph (timing needs real launches): call warm() first.
  // row_capacity: rows x and y hold (0: m); the tuner may time at up to that many rows (see above).
  // pad_rows: x's and y's rows from m up to row_capacity are scratch, so the product may be run over
  // more rows than m (see "Padded rows" above): y's rows past m are then overwritten with x's rows'
  // products (x's stale rows are read as they are).
  void run(const void* x, const void* w, void* y, int32_t m, int32_t n, int32_t k, bool out_f32, cudaStream_t stream,
           int32_t row_capacity = 0, bool pad_rows = false);
  // y[m, n] += x[m, k] · w[n, k]ᵀ with y fp32 (cuBLASLt with beta = 1: the product is added to y in
  // fp32 before anything is rounded), for the residual stream. cuBLASLt only, so m must exceed
  // kSkinnyMaxM (the gemv and skinny kernels have no accumulating epilogue). The shape shares run()'s
  // fp32-output plan; when that is first chosen its timing calls write `scratch` (m x n fp32, contents
  // lost), never y (row_capacity counts x's and scratch's rows). Same capture rule as run(). pad_rows:
  // as run()'s, y's rows up to row_capacity included (x's stale rows' products are added to them).
  void run_accumulate(const void* x, const void* w, float* y, float* scratch, int32_t m, int32_t n, int32_t k,
                      cudaStream_t stream, int32_t row_capacity = 0, bool pad_rows = false);
  // The MLP's down projection: y[m, n] = (silu(gate) * up)[m, k] · w[n, k]ᵀ with gate_up [m, 2k] bf16,
  // y bf16. Up to kGemvMaxM rows it times the gemv that applies SiLU-and-multiply while loading x
  // against silu_mul into `act` [m, k] followed by run(), and keeps the faster; above, always the
  // latter. Same capture rule as run(); pad_rows: run()'s, for the GEMM after silu_mul (act's rows
  // past m are read as they are).
  void run_silu_mul(const void* gate_up, void* act, const void* w, void* y, int32_t m, int32_t n, int32_t k,
                    cudaStream_t stream, int32_t row_capacity = 0, bool pad_rows = false);
  // The MLP's gate/up projection, w = [gate; up] ([2 x inter, k]). Where the path chosen for the plain
  // projection (m, 2 x inter, k, bf16 out) is a gemv variant that can (gemv_silu_mul_supported), it
  // stores act = bf16(silu(gate) * up) [m, inter] directly and returns true: bitwise what run() into
  // gate_up followed by silu_mul would store, one launch and no gate_up round trip. Otherwise it runs
  // the plain projection into gate_up [m, 2 x inter] and returns false (the caller applies SiLU, e.g.
  // through run_silu_mul). With set_prefill_swiglu on, above kSkinnyMaxM rows on a device of compute
  // capability 9.0 and for shapes it takes (inter % 128 == 0, k % 64 == 0), it instead runs the fused
  // SwiGLU GEMM (gemm_swiglu_wgmma.cuh: act within bf16 rounding of that pair, gate_up untouched) and
  // returns true, unless the pair (the plain projection + silu_mul) timed 3% faster at the row bucket;
  // its variant is the fastest of kSwigluTunedVariants timed once per row bucket (a preset's where
  // one is given: choices() lists the bucket's as GemmPath::kSwiglu; kSwigluDefaultVariant without
  // autotuning or the set_swiglu_variant one, neither then timed against the pair). Same capture rule
  // as run().
  bool run_gate_up_silu(const void* x, const void* w, void* gate_up, void* act, int32_t m, int32_t inter, int32_t k,
                        cudaStream_t stream, int32_t row_capacity = 0);
  // The chosen path for a shape, once run/warm has seen it: -1 cuBLASLt, else the gemv variant.
  int chosen_gemv_variant(int32_t m, int32_t n, int32_t k, bool out_f32) const;
  // Same for run_silu_mul: -1 silu_mul + run(), else the fused gemv variant.
  int chosen_silu_variant(int32_t m, int32_t n, int32_t k) const;
  // The skinny tensor-core variant chosen for a shape, -1 if another path won (or not seen yet).
  int chosen_skinny_variant(int32_t m, int32_t n, int32_t k, bool out_f32) const;
  // In-context tuning of decode-sized shapes (model/cuda_runner_decode_chain_tuning.cpp): the paths of a
  // shape timed in this process (not a preset's, not a bucket's) whose time alone came within `margin`
  // (>= 1) of its fastest, at most `max` of them, fastest first: cuBLASLt's kept algorithm, gemv and
  // skinny variants. Empty where neither a gemv nor a skinny variant was timed for the shape.
  std::vector<DecodePath> decode_contenders(int32_t m, int32_t n, int32_t k, bool out_f32, float margin,
                                            size_t max = SIZE_MAX) const;
  // The path run() takes for a seen shape (both -2: not seen).
  DecodePath chosen_decode_path(int32_t m, int32_t n, int32_t k, bool out_f32) const;
  // Makes one of those the shape's choice: run(), choices() and the plans of the rows that take this
  // shape's bucket (made again on their next use) follow it. Throws tessera::Error
  // (kFailedPrecondition) for a shape with no variants timed here, (kInvalidArgument) naming a path
  // that was not timed for it.
  void choose_decode_path(int32_t m, int32_t n, int32_t k, bool out_f32, DecodePath path);
  // The cuBLASLt candidates timed for a shape once run/warm has seen it (0 before): the heuristic's
  // and, for skinny shapes, split-K copies of them. run_cublas_candidate runs the i-th (tests check
  // that every one computes the product).
  int num_cublas_candidates(int32_t m, int32_t n, int32_t k, bool out_f32) const;
  void run_cublas_candidate(int i, const void* x, const void* w, void* y, int32_t m, int32_t n, int32_t k, bool out_f32,
                            cudaStream_t stream);
  // The split-K count of the cuBLASLt algorithm kept for a seen shape (1: none; 0: shape not seen).
  int chosen_cublas_split_k(int32_t m, int32_t n, int32_t k, bool out_f32) const;
  // The index among run_cublas_candidate's candidates of the algorithm kept for a seen shape (-1: not
  // seen), and a candidate's cuBLASLt configuration as text ("algo 66 tile 40 stages 20 ..."), for benchmarks.
  int chosen_cublas_candidate(int32_t m, int32_t n, int32_t k, bool out_f32) const;
  std::string describe_cublas_candidate(int i, int32_t m, int32_t n, int32_t k, bool out_f32) const;
  // On: run_gate_up_silu takes the fused SwiGLU GEMM for prefill-sized steps where it can (see there).
  void set_prefill_swiglu(bool on) { prefill_swiglu_ = on; }
  // The fused SwiGLU GEMM's variant for every shape instead of the fastest timed (-1: timed; for A/B
  // benchmarks). Throws tessera::Error (kInvalidArgument) naming a variant outside -1..kSwigluVariants - 1.
  void set_swiglu_variant(int variant);
  // Whether run_gate_up_silu would take the fused SwiGLU GEMM for this shape (pointers 16-byte aligned).
  bool takes_prefill_swiglu(int32_t m, int32_t inter, int32_t k) const;
  // Chooses (times) the fused SwiGLU GEMM's variant for the shape's row bucket where run_gate_up_silu
  // could take it, and times the pair against it (x: row_capacity rows; gate_up, act: the pair's and
  // the kernel's outputs, overwritten); the variant, -1 where it does not take the shape or the pair
  // was faster.
  int warm_prefill_swiglu(int32_t m, int32_t inter, int32_t k, const void* x, const void* w, void* gate_up, void* act,
                          cudaStream_t stream, int32_t row_capacity = 0);
  // The fused SwiGLU GEMM's variant chosen for a seen shape's row bucket; -1: the pair won there;
  // -2: not seen (or not taken).
  int chosen_swiglu_variant(int32_t m, int32_t inter, int32_t k, int32_t row_capacity = 0) const;
  // Calls with pad_rows run a shape of kSkinnyMaxM < m rows at its bucket's rows when the bucket holds at
  // most this many (0: never; default 128, what was measured). Call before the first run.
  void set_pad_rows_up_to(int32_t rows) { pad_up_to_ = rows; }
  int32_t pad_rows_up_to() const { return pad_up_to_; }
  // The rows a call of m rows runs at: its bucket's (tuning_rows) where pad_rows allows and the bucket
  // holds more than kSkinnyMaxM and at most pad_rows_up_to() rows, else m.
  int32_t padded_rows(int32_t m, int32_t row_capacity, bool pad_rows) const;
  // Off: never use the gemv kernel (for benchmarks comparing the two).
  void set_allow_gemv(bool allow) { allow_gemv_ = allow; }
  // A warp-per-column gemv variant is chosen over the best split-K one only when its time is below
  // margin x the split-K time (0: never). In the decode chain a split-K gemv loads its weights before
  // waiting on the previous kernel, which a variant timed alone cannot show: in
  // tessera_cuda_kernel_bench's chain of 32 layers (H200, 2026-11-25) the best split-K variants with
  // PDL ran the projections 1.4-3.0% faster than warp variants that had won alone by under 3%.
  void set_warp_variant_margin(float margin) { warp_margin_ = margin; }
  // Off: nothing is timed; every shape takes cuBLASLt's first heuristic algorithm (its own choice is
  // deterministic for one device and library), up to kGemvMaxM rows the first split-K gemv variant,
  // SiLU never fused. The same algorithms in every process, so outputs are bitwise reproducible
  // across restarts and between runners; somewhat slower. Call before the first run.
  void set_autotune(bool autotune) { autotune_ = autotune; }
  // Shapes tuned at `rows` rows or more (0: none) choose their cuBLASLt algorithm a second time among
  // the candidates whose burst time is within 15% of the best, each timed in rounds of ~20 ms of calls
  // after ~150 ms of the best one: the board at its power cap, as in a long prefill, where a candidate
  // doing less work per FLOP can win a race it loses in a burst (gemm_sustained.cpp). Call before the
  // first run; presets (a tuning cache) are taken as they are.
  void set_sustained_tuning_rows(int32_t rows) { sustained_rows_ = rows; }
  // Timed shapes that took that second look (it times only when 2+ candidates came within 15%).
  int num_sustained_shapes() const { return sustained_shapes_; }
  // Chooses and caches the algorithm for a shape (runs timing launches on scratch buffers).
  void warm(int32_t m, int32_t n, int32_t k, bool out_f32, const void* x, const void* w, void* y, cudaStream_t stream,
            int32_t row_capacity = 0);
  // Same for run_silu_mul's choice (gate_up [m, 2k], act [m, k], y [m, n]).
  void warm_silu_mul(int32_t m, int32_t n, int32_t k, const void* gate_up, void* act, const void* w, void* y,
                     cudaStream_t stream, int32_t row_capacity = 0);
  // fp32 x, w and y; the algorithm is chosen (timed) on first use of a shape's bucket, like run's.
  void run_f32(const float* x, const float* w, float* y, int32_t m, int32_t n, int32_t k, cudaStream_t stream,
               int32_t row_capacity = 0);
  // The rows a shape of m rows is tuned at, given the caller's capacity: m rounded up to a power of
  // two, at most row_capacity (m itself when row_capacity <= m or autotuning is off).
  int32_t tuning_rows(int32_t m, int32_t row_capacity) const;
  // Shapes whose choice was timed so far (a shape taken from its bucket's choice or a preset counts 0).
  int num_timed_shapes() const { return timed_shapes_; }
  // The choices made so far (one per shape and path), and presets that replace timing for shapes not
  // seen yet: a preset whose cuBLASLt index or variant does not fit the shape on this device is
  // dropped (the shape is then timed), so a stale cache never gives a wrong product.
  std::vector<GemmChoice> choices() const;
  void preset(const GemmChoice& choice);
  size_t num_plans() const { return plans_.size() + plans_f32_.size(); }

 private:
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    std::vector<cublasLtMatmulAlgo_t> candidates;  // every cuBLASLt algorithm timed; algo is one of them
    int gemv_variant = -1;    // >= 0: the gemv kernel with this variant beat cuBLASLt for this shape
    int skinny_variant = -1;  // >= 0: the skinny tensor-core kernel with this variant beat both
    int cublas_index = 0;     // algo's index among the heuristic's candidates (GemmChoice::cublas_index)
    float ms = 0.0f;        // the winner's median time when chosen
    // Timed in this process (empty otherwise), for choose_decode_path: each gemv and skinny variant's
    // median time (infinity where it did not fit), and the kept cuBLASLt algorithm's.
    std::vector<float> gemv_ms, skinny_ms;
    float cublas_ms = 0.0f;
    bool from_bucket = false;  // m took the choice of its bucket's shape (not listed by choices())
  };
  using Key = std::tuple<int32_t, int32_t, int32_t, bool, bool>;  // m, n, k, out_f32, SiLU input
  Plan& plan_for(int32_t m, int32_t n, int32_t k, bool out_f32, const void* x, const void* w, void* y,
                 cudaStream_t stream, int32_t row_capacity);
  // A plan for m rows with `tuned`'s choices (the plan of m's bucket): its algorithm where cuBLASLt
  // accepts it for m (else the heuristic's first), its gemv/skinny variant where that fits m.
  Plan plan_from_bucket(const Plan& tuned, int32_t m, int32_t n, int32_t k, cudaDataType_t in, cudaDataType_t out,
                        const void* x, const void* w) const;
  // Creates p's matmul and layout descriptors (p owns them from then on).
  static void create_descs(Plan& p, int32_t m, int32_t n, int32_t k, cudaDataType_t in, cudaDataType_t out);
  // Median time of one cuBLASLt algorithm on p's shape (L2 overwritten first when flush), or
  // infinity when it does not launch.
  float time_matmul(const Plan& p, const cublasLtMatmulAlgo_t& algo, const void* x, const void* w, void* y,
                    cudaStream_t stream, bool flush);
  // The index into p.candidates of the fastest of them at the power cap (see set_sustained_tuning_rows),
  // given their burst times and the burst winner `best`.
  int retime_sustained(const Plan& p, const std::vector<float>& burst_ms, int best, const void* x, const void* w,
                       void* y, cudaStream_t stream);
  Plan& silu_plan_for(int32_t m, int32_t n, int32_t k, const void* gate_up, void* act, const void* w, void* y,
                      cudaStream_t stream, int32_t row_capacity);
  // Overwrites the skinny workspace (when given: 64 MiB in the runner, more than the L2) so the next
  // timed call reads its weights from DRAM, as a decode step does.
  void flush_l2(cudaStream_t stream) const;
  void run_plan(const Plan& p, const void* x, const void* w, void* y, int32_t m, int32_t n, int32_t k, bool out_f32,
                cudaStream_t stream);

  Plan& plan_f32_for(int32_t m, int32_t n, int32_t k, const float* x, const float* w, float* y, cudaStream_t stream,
                     int32_t row_capacity);
  // Times the heuristic's candidates for p's descriptors and keeps the fastest in p.algo / p.ms.
  void choose_algo(Plan& p, const void* x, const void* w, void* y, int32_t m, int32_t n, int32_t k,
                   cudaStream_t stream);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_;
  size_t workspace_bytes_;
  void* skinny_ws_;
  size_t skinny_bytes_;
  bool allow_gemv_ = true;
  int32_t pad_up_to_ = 128;
  bool prefill_swiglu_ = false;
  bool swiglu_device_ = false;  // the current device at construction runs gemm_swiglu
  int swiglu_forced_ = -1;      // set_swiglu_variant
  float warp_margin_ = 0.97f;
  bool autotune_ = true;
  int32_t sustained_rows_ = 0;
  int sustained_shapes_ = 0;
  int timed_shapes_ = 0;
  std::map<Key, Plan> plans_;
  std::map<std::tuple<int32_t, int32_t, int32_t>, Plan> plans_f32_;
  struct SwigluChoice {
    int variant;
    int blocks;  // its persistent grid (gemm_swiglu_blocks at the bucket's rows)
  };
  std::map<std::tuple<int32_t, int32_t, int32_t>, SwigluChoice> swiglu_variants_;  // by (bucket rows, inter, k)
  // The SwiGLU GEMM's choice for a shape's row bucket where run_gate_up_silu takes the kernel, timed on
  // first use (gemm_prefill_swiglu.cpp); nullptr where it does not take the shape or the pair won.
  const SwigluChoice* prefill_swiglu(int32_t m, int32_t inter, int32_t k, const void* x, const void* w,
                                     void* gate_up, void* act, cudaStream_t stream, int32_t row_capacity);
  SwigluChoice time_prefill_swiglu(int32_t t, int32_t inter, int32_t k, const void* x, const void* w, void* gate_up,
                                   void* act, cudaStream_t stream);
  // preset() choices not used yet, by (path, m, n, k, out_f32).
  std::map<std::tuple<int32_t, int32_t, int32_t, int32_t, bool>, GemmChoice> presets_;
  const GemmChoice* find_preset(GemmPath path, int32_t m, int32_t n, int32_t k, bool out_f32) const;
};

}  // namespace tessera::cuda
