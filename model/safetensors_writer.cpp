// write_safetensors (see safetensors_writer.h).
#include "model/safetensors_writer.h"

#include <nlohmann/json.hpp>

#include <fstream>

#include "common/error.h"

namespace tessera {
namespace {
const char* st_name(DType d) {
  switch (d) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
  }
  return "F32";
}
uint64_t bytes_of(const TensorToWrite& t) {
  uint64_t n = dtype_size(t.dtype);
  for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
  return n;
}
}  // namespace

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors) {
  nlohmann::json header = {{"__metadata__", {{"format", "pt"}}}};
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    const uint64_t n = bytes_of(t);
    header[t.name] = {{"dtype", st_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  TS_CHECK(out.good(), kUnavailable, "cannot write {}", path.string());
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  out.write(len, 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const TensorToWrite& t : tensors) {
    out.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(bytes_of(t)));
  }
  out.flush();
  TS_CHECK(out.good(), kUnavailable, "writing {} failed (disk full?)", path.string());
}

}  // namespace tessera
