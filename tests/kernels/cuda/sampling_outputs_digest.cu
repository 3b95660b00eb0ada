// sampling_outputs_digest: writes every output of a fixed set of sampler launches (rows 1 / 3 / 64
// on one workspace, mixed settings, bias and penalties, ties, -inf logits, the one-block reference
// search, a CUDA graph replay) to a file, so that two builds of kernels/cuda/sampling.cu can be
// compared bitwise on the device: the file names the commit it was built from, the outputs must be
// byte-equal. It compiles the sampler into itself (one translation unit), with the tree to test
// first on the include path:
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -I<tree> -I<this repo>
//     tests/kernels/cuda/sampling_outputs_digest.cu -o digest
// Not part of the CMake build (it must build against another commit's sampler too); tests only.
#include "kernels/cuda/sampling.cu"

#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace tessera::cuda {
void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: %s failed: %s\n", file, line, expr, cudaGetErrorString(err));
  std::exit(2);
}
}  // namespace tessera::cuda

namespace {

using namespace tessera::cuda;

#define CHECK(x)                                                                     \
  do {                                                                               \
    const cudaError_t e_ = (x);                                                      \
    if (e_ != cudaSuccess) throw_cuda_error(e_, #x, __FILE__, __LINE__);             \
  } while (0)

constexpr int32_t kVocab = 128256, kCapacity = 64;

template <typename T>
T* upload(const std::vector<T>& h) {
  T* d = nullptr;
  CHECK(cudaMalloc(&d, sizeof(T) * std::max<size_t>(h.size(), 1)));
  if (!h.empty()) CHECK(cudaMemcpy(d, h.data(), sizeof(T) * h.size(), cudaMemcpyHostToDevice));
  return d;
}

// Row r's settings in launch `salt`: every mode the sampler has.
SampleRow settings(int32_t r, int32_t salt) {
  SampleRow p;
  const int32_t m = (r + salt) % 12;
  const float temps[] = {0.0f, 0.7f, 1.0f, 1.3f, 0.5f, 2.0f};
  p.temperature = temps[m % 6];
  p.top_k = m == 1 || m == 7 ? 50 : m == 9 ? 1 : m == 10 ? 4000 : 0;
  p.top_p = m == 2 || m == 7 ? 0.9f : m == 8 ? 0.5f : 1.0f;
  p.min_p = m == 3 ? 0.05f : 0.0f;
  p.num_logprobs = m == 0 ? 5 : m == 6 ? kMaxTopLogprobs : m == 8 ? 3 : 0;
  p.seed = 1000 + 7 * r + salt;
  p.step = 3 * r + salt;
  return p;
}

// Logits of row r: normal values; some rows with ties at the top, some with -inf stretches.
std::vector<float> logits(int32_t rows, std::mt19937& rng, int32_t salt) {
  std::normal_distribution<float> d(0.0f, salt % 2 ? 1.0f : 3.0f);
  std::vector<float> x(static_cast<size_t>(rows) * kVocab);
  for (int32_t r = 0; r < rows; ++r) {
    float* xr = x.data() + static_cast<size_t>(r) * kVocab;
    for (int32_t i = 0; i < kVocab; ++i) xr[i] = d(rng);
    if ((r + salt) % 5 == 1)
      for (int32_t i = 100; i < 3100; i += 3) xr[i] = 12.0f;  // 1,000 ties at the top
    if ((r + salt) % 7 == 2)
      for (int32_t i = 0; i < kVocab; i += 2) xr[i] = -std::numeric_limits<float>::infinity();
  }
  return x;
}

struct Launch {
  float* x;
  SampleRow* params;
  SampleEntry* entries;
  int32_t* tok;
  float* lp;
  int32_t* top_tok;
  float* top_lp;
};

void append(std::vector<unsigned char>* out, const void* d, size_t bytes) {
  const size_t at = out->size();
  out->resize(at + bytes);
  CHECK(cudaMemcpy(out->data() + at, d, bytes, cudaMemcpyDeviceToHost));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_FILE\n", argv[0]);
    return 2;
  }
  std::mt19937 rng(20261125);
  void* ws = nullptr;
  CHECK(cudaMalloc(&ws, sample_workspace_bytes(kCapacity)));
  CHECK(cudaMemset(ws, 0, sample_workspace_bytes(kCapacity)));
  std::vector<unsigned char> out;
  int32_t salt = 0;
  for (int32_t rows : {1, 3, 64, 3, 1, 64, 64}) {
    const std::vector<float> x = logits(rows, rng, salt);
    std::vector<SampleRow> p(rows);
    std::vector<SampleEntry> e;
    for (int32_t r = 0; r < rows; ++r) {
      p[r] = settings(r, salt);
      if ((r + salt) % 4 == 3) {  // bias and penalties
        p[r].repetition_penalty = 1.2f;
        p[r].presence_penalty = 0.5f;
        p[r].frequency_penalty = 0.25f;
        p[r].entries_begin = static_cast<int32_t>(e.size());
        for (int32_t t = 0; t < 40; ++t) e.push_back({(t * 3203 + r) % kVocab, t % 3, t % 2, t % 5 == 0 ? 3.0f : 0.0f});
        p[r].entries_end = static_cast<int32_t>(e.size());
      }
    }
    Launch l{upload(x), upload(p), upload(e), nullptr, nullptr, nullptr, nullptr};
    CHECK(cudaMalloc(&l.tok, sizeof(int32_t) * rows));
    CHECK(cudaMalloc(&l.lp, sizeof(float) * rows));
    CHECK(cudaMalloc(&l.top_tok, sizeof(int32_t) * rows * kMaxTopLogprobs));
    CHECK(cudaMalloc(&l.top_lp, sizeof(float) * rows * kMaxTopLogprobs));
    bool any_selection = false;
    for (const SampleRow& r : p) any_selection |= sample_row_wants_selection(r, kVocab);
    for (int variant = 0; variant < 3; ++variant) {  // sliced, one-block reference, graph replay
      CHECK(cudaMemcpy(l.x, x.data(), sizeof(float) * x.size(), cudaMemcpyHostToDevice));
      CHECK(cudaMemset(l.tok, 0xff, sizeof(int32_t) * rows));
      CHECK(cudaMemset(l.lp, 0xff, sizeof(float) * rows));
      CHECK(cudaMemset(l.top_tok, 0xff, sizeof(int32_t) * rows * kMaxTopLogprobs));
      CHECK(cudaMemset(l.top_lp, 0xff, sizeof(float) * rows * kMaxTopLogprobs));
      SampleArgs a;
      a.logits = l.x;
      a.rows = rows;
      a.vocab = kVocab;
      a.params = l.params;
      a.entries = l.entries;
      a.out_token = l.tok;
      a.out_logprob = l.lp;
      a.out_top_tokens = l.top_tok;
      a.out_top_logprobs = l.top_lp;
      a.workspace = ws;
      a.workspace_rows = kCapacity;
      a.no_selection = !any_selection;
      a.reference_selection = variant == 1;
      if (variant == 2) {
        cudaStream_t s = nullptr;
        CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
        cudaGraph_t g = nullptr;
        cudaGraphExec_t ge = nullptr;
        CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        sample(a, s);
        CHECK(cudaStreamEndCapture(s, &g));
        CHECK(cudaGraphInstantiate(&ge, g, 0));
        for (int replay = 0; replay < 2; ++replay) {  // the second replays over restored logits
          CHECK(cudaMemcpyAsync(l.x, x.data(), sizeof(float) * x.size(), cudaMemcpyHostToDevice, s));
          CHECK(cudaGraphLaunch(ge, s));
        }
        CHECK(cudaStreamSynchronize(s));
        cudaGraphExecDestroy(ge);
        cudaGraphDestroy(g);
        cudaStreamDestroy(s);
      } else {
        sample(a, nullptr);
      }
      CHECK(cudaDeviceSynchronize());
      append(&out, l.tok, sizeof(int32_t) * rows);
      append(&out, l.lp, sizeof(float) * rows);
      append(&out, l.top_tok, sizeof(int32_t) * rows * kMaxTopLogprobs);
      append(&out, l.top_lp, sizeof(float) * rows * kMaxTopLogprobs);
    }
    for (void* q : {(void*)l.x, (void*)l.params, (void*)l.entries, (void*)l.tok, (void*)l.lp, (void*)l.top_tok,
                    (void*)l.top_lp})
      cudaFree(q);
    ++salt;
  }
  cudaFree(ws);
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : out) h = (h ^ c) * 1099511628211ull;
  FILE* f = std::fopen(argv[1], "wb");
  if (f == nullptr || std::fwrite(out.data(), 1, out.size(), f) != out.size() || std::fclose(f) != 0) {
    std::fprintf(stderr, "cannot write %s\n", argv[1]);
    return 2;
  }
  std::printf("%zu bytes of outputs, FNV-1a %016llx\n", out.size(), static_cast<unsigned long long>(h));
  return 0;
}
