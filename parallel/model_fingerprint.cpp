// Fingerprint of config.json + safetensors headers + TP size (see model_fingerprint.h).
#include "parallel/model_fingerprint.h"

#include <algorithm>
#include <fstream>
#include <vector>

#include "common/error.h"
#include "parallel/rendezvous.h"
#include "parallel/wire.h"

namespace tessera::parallel {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // safetensors' own limit on the JSON header
constexpr uint64_t kMaxConfigBytes = 16u << 20;

std::vector<uint8_t> read_prefix(const std::filesystem::path& path, uint64_t offset, uint64_t n) {
  std::ifstream in(path, std::ios::binary);
  TS_CHECK(in.good(), kNotFound, "cannot open '{}'", path.string());
  in.seekg(static_cast<std::streamoff>(offset));
  std::vector<uint8_t> out(n);
  in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n));
  TS_CHECK(static_cast<uint64_t>(in.gcount()) == n, kDataLoss, "'{}' ends before byte {}", path.string(), offset + n);
  return out;
}

}  // namespace

ModelFingerprint model_fingerprint(const std::filesystem::path& dir, int tp_size) {
  const auto config = dir / "config.json";
  TS_CHECK(std::filesystem::is_regular_file(config), kNotFound, "no config.json in model directory '{}'",
           dir.string());
  const uint64_t config_size = std::filesystem::file_size(config);
  TS_CHECK(config_size <= kMaxConfigBytes, kDataLoss, "'{}' is {} bytes, over the limit {}", config.string(),
           config_size, kMaxConfigBytes);
  ByteWriter w;
  w.string("tessera-model-fingerprint-v1");
  w.i32(tp_size);
  const auto config_bytes = read_prefix(config, 0, config_size);
  w.bytes(config_bytes);
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".safetensors") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  uint64_t total = 0;
  for (const auto& f : files) {
    const uint64_t size = std::filesystem::file_size(f);
    total += size;
    TS_CHECK(size >= 8, kDataLoss, "safetensors file '{}' is {} bytes, too short for a header", f.string(), size);
    const auto len_bytes = read_prefix(f, 0, 8);
    ByteReader r(len_bytes, "safetensors header length");
    const uint64_t header_len = r.u64();
    TS_CHECK(header_len <= kMaxHeaderBytes && header_len <= size - 8, kDataLoss,
             "safetensors file '{}' claims a {}-byte header but is {} bytes (limit {})", f.string(), header_len, size,
             kMaxHeaderBytes);
    w.string(f.filename().string());
    w.u64(size);
    w.bytes(read_prefix(f, 8, header_len));
  }
  ModelFingerprint fp;
  fp.digest = sha256(w.data());
  fp.description = fmt::format("config.json sha256 {}, {} weight files ({:.1f} GB), tp {}",
                               digest_hex(sha256(config_bytes), 6), files.size(), total / 1e9, tp_size);
  return fp;
}

ModelFingerprint named_fingerprint(const std::string& name, int tp_size) {
  ByteWriter w;
  w.string("tessera-named-model-v1");
  w.string(name);
  w.i32(tp_size);
  return {sha256(w.data()), fmt::format("built-in model '{}', tp {}", name, tp_size)};
}

}  // namespace tessera::parallel
