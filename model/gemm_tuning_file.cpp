// GEMM tuning cache file: JSON {"format", "device", "compute_capability", "cublaslt_version",
// "cuda_runtime_version", "choices": [{"path", "m", "n", "k", "out_f32", "cublas", "gemv", "skinny",
// "swiglu"}]} ("swiglu" may be absent: -1, as files written before it existed).
#include "model/gemm_tuning_file.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

#include "common/error.h"

namespace tessera {
namespace {

constexpr const char* kFormat = "tessera-gemm-tuning/1";
constexpr int64_t kMaxDim = 1 << 24;      // rows, columns or depth of a projection
constexpr int32_t kMaxIndex = 1 << 12;    // candidate or variant index
constexpr size_t kMaxFileBytes = 16u << 20;

using nlohmann::json;

// An integer member of `o` in [lo, hi], or an explanation of why not.
bool int_in(const json& o, const char* key, int64_t lo, int64_t hi, int64_t* out, std::string* why) {
  const auto it = o.find(key);
  if (it == o.end() || !it->is_number_integer()) {
    *why = fmt::format("'{}' is missing or not an integer", key);
    return false;
  }
  const int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) {
    *why = fmt::format("'{}' = {} is outside [{}, {}]", key, v, lo, hi);
    return false;
  }
  *out = v;
  return true;
}

bool parse_choice(const json& o, cuda::GemmChoice* c, std::string* why) {
  if (!o.is_object()) {
    *why = "a choice is not an object";
    return false;
  }
  int64_t path, m, n, k, cublas, gemv, skinny, swiglu = -1;
  if (!int_in(o, "path", 0, 3, &path, why) || !int_in(o, "m", 1, kMaxDim, &m, why) ||
      !int_in(o, "n", 1, kMaxDim, &n, why) || !int_in(o, "k", 1, kMaxDim, &k, why) ||
      !int_in(o, "cublas", 0, kMaxIndex, &cublas, why) || !int_in(o, "gemv", -1, kMaxIndex, &gemv, why) ||
      !int_in(o, "skinny", -1, kMaxIndex, &skinny, why) ||
      (o.contains("swiglu") && !int_in(o, "swiglu", -1, kMaxIndex, &swiglu, why)))
    return false;
  const auto f = o.find("out_f32");
  if (f == o.end() || !f->is_boolean()) {
    *why = "'out_f32' is missing or not a boolean";
    return false;
  }
  c->path = static_cast<cuda::GemmPath>(path);
  c->m = static_cast<int32_t>(m), c->n = static_cast<int32_t>(n), c->k = static_cast<int32_t>(k);
  c->out_f32 = f->get<bool>();
  c->cublas_index = static_cast<int32_t>(cublas);
  c->gemv_variant = static_cast<int32_t>(gemv);
  c->skinny_variant = static_cast<int32_t>(skinny);
  c->swiglu_variant = static_cast<int32_t>(swiglu);
  return true;
}

std::vector<cuda::GemmChoice> parse(const std::string& text, const GemmTuningIdentity& id, std::string* why) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    *why = "not a JSON object";
    return {};
  }
  if (j.value("format", std::string()) != kFormat) {
    *why = fmt::format("format is not '{}'", kFormat);
    return {};
  }
  GemmTuningIdentity file;
  int64_t cc, lt, rt;
  if (!j.contains("device") || !j["device"].is_string()) {
    *why = "'device' is missing or not a string";
    return {};
  }
  file.device = j["device"].get<std::string>();
  if (!int_in(j, "compute_capability", 0, 1000, &cc, why) || !int_in(j, "cublaslt_version", 0, INT64_MAX, &lt, why) ||
      !int_in(j, "cuda_runtime_version", 0, INT32_MAX, &rt, why))
    return {};
  file.compute_capability = static_cast<int32_t>(cc);
  file.cublaslt_version = lt;
  file.cuda_runtime_version = static_cast<int32_t>(rt);
  if (!(file == id)) {
    *why = fmt::format("it was tuned on {} (sm {}, cuBLASLt {}, CUDA runtime {}), this is {} (sm {}, cuBLASLt {}, "
                       "CUDA runtime {})",
                       file.device, file.compute_capability, file.cublaslt_version, file.cuda_runtime_version,
                       id.device, id.compute_capability, id.cublaslt_version, id.cuda_runtime_version);
    return {};
  }
  const auto list = j.find("choices");
  if (list == j.end() || !list->is_array()) {
    *why = "'choices' is missing or not an array";
    return {};
  }
  std::vector<cuda::GemmChoice> out;
  for (const json& o : *list) {
    cuda::GemmChoice c;
    if (!parse_choice(o, &c, why)) {
      *why = fmt::format("choice {}: {}", out.size(), *why);
      return {};
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::vector<cuda::GemmChoice> read_gemm_tuning(const std::string& path, const GemmTuningIdentity& identity) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    spdlog::info("GEMM tuning cache {}: not there yet; shapes are timed and their choices written there", path);
    return {};
  }
  std::string text;
  text.resize(kMaxFileBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  std::string why;
  std::vector<cuda::GemmChoice> out;
  if (text.size() > kMaxFileBytes) {
    why = fmt::format("larger than {} bytes", kMaxFileBytes);
  } else {
    out = parse(text, identity, &why);
  }
  if (!why.empty()) {
    spdlog::warn("GEMM tuning cache {} ignored ({}): shapes are timed again and the file rewritten", path, why);
    return {};
  }
  spdlog::info("GEMM tuning cache {}: {} choices", path, out.size());
  return out;
}

void write_gemm_tuning(const std::string& path, const GemmTuningIdentity& identity,
                       const std::vector<cuda::GemmChoice>& choices) {
  json list = json::array();
  for (const cuda::GemmChoice& c : choices)
    list.push_back({{"path", static_cast<int32_t>(c.path)}, {"m", c.m}, {"n", c.n}, {"k", c.k}, {"out_f32", c.out_f32},
                    {"cublas", c.cublas_index}, {"gemv", c.gemv_variant}, {"skinny", c.skinny_variant},
                    {"swiglu", c.swiglu_variant}});
  const json j{{"format", kFormat},
               {"device", identity.device},
               {"compute_capability", identity.compute_capability},
               {"cublaslt_version", identity.cublaslt_version},
               {"cuda_runtime_version", identity.cuda_runtime_version},
               {"choices", std::move(list)}};
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    TS_CHECK(static_cast<bool>(out), kInternal, "cannot write the GEMM tuning cache {}", tmp);
    out << j.dump(1) << '\n';
    out.flush();
    TS_CHECK(static_cast<bool>(out), kInternal, "cannot write the GEMM tuning cache {}", tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    TS_THROW(kInternal, "cannot rename {} to the GEMM tuning cache {}", tmp, path);
  }
}

}  // namespace tessera
