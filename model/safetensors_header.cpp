// Safetensors header parsing (see safetensors_header.h). Every number from the file is checked
// before it is used as a size or an offset.
#include "model/safetensors_header.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

#include "common/error.h"

namespace tessera {
namespace {

using nlohmann::json;

// Element size of a safetensors dtype name; 0 when unknown.
uint64_t element_size(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

std::optional<DType> compute_dtype(const std::string& d) {
  if (d == "F32") return DType::kF32;
  if (d == "F16") return DType::kF16;
  if (d == "BF16") return DType::kBF16;
  return std::nullopt;
}

uint64_t get_u64(const json& v, const std::string& label, const std::string& name, const char* what) {
  TS_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), kDataLoss,
           "{}: tensor '{}': {} must be a non-negative integer, got {}", label, name, what, v.dump());
  return v.get<uint64_t>();
}

SafetensorsEntry parse_entry(const std::string& name, const json& e, uint64_t data_size, uint64_t data_start,
                             const std::string& label) {
  TS_CHECK(e.is_object(), kDataLoss, "{}: tensor '{}': entry must be an object, got {}", label, name,
           e.type_name());
  SafetensorsEntry t;
  t.name = name;
  TS_CHECK(e.contains("dtype") && e["dtype"].is_string(), kDataLoss, "{}: tensor '{}': missing string 'dtype'",
           label, name);
  t.dtype_name = e["dtype"].get<std::string>();
  const uint64_t esize = element_size(t.dtype_name);
  TS_CHECK(esize != 0, kDataLoss, "{}: tensor '{}': unknown dtype \"{}\"", label, name, t.dtype_name);
  t.dtype = compute_dtype(t.dtype_name);

  TS_CHECK(e.contains("shape") && e["shape"].is_array(), kDataLoss, "{}: tensor '{}': missing list 'shape'", label,
           name);
  TS_CHECK(e["shape"].size() <= 8, kDataLoss, "{}: tensor '{}': shape has {} dimensions", label, name,
           e["shape"].size());
  uint64_t n = 1;
  for (const json& d : e["shape"]) {
    const uint64_t dim = get_u64(d, label, name, "a shape dimension");
    TS_CHECK(dim <= (uint64_t{1} << 40), kDataLoss, "{}: tensor '{}': shape dimension {} is too large", label, name,
             dim);
    TS_CHECK(dim == 0 || n <= std::numeric_limits<uint64_t>::max() / dim, kDataLoss,
             "{}: tensor '{}': shape {} overflows", label, name, e["shape"].dump());
    n *= dim;
    t.shape.push_back(static_cast<int64_t>(dim));
  }
  t.num_elements = n;
  TS_CHECK(n <= std::numeric_limits<uint64_t>::max() / esize, kDataLoss, "{}: tensor '{}': shape {} overflows", label,
           name, e["shape"].dump());

  TS_CHECK(e.contains("data_offsets") && e["data_offsets"].is_array() && e["data_offsets"].size() == 2, kDataLoss,
           "{}: tensor '{}': 'data_offsets' must be a list of two integers", label, name);
  const uint64_t begin = get_u64(e["data_offsets"][0], label, name, "data_offsets[0]");
  const uint64_t end = get_u64(e["data_offsets"][1], label, name, "data_offsets[1]");
  TS_CHECK(begin <= end && end <= data_size, kDataLoss,
           "{}: tensor '{}': data_offsets [{}, {}] outside the {} data bytes of the file (truncated?)", label, name,
           begin, end, data_size);
  TS_CHECK(end - begin == n * esize, kDataLoss,
           "{}: tensor '{}': data_offsets span {} bytes but shape {} of {} needs {}", label, name, end - begin,
           e["shape"].dump(), t.dtype_name, n * esize);
  t.offset = data_start + begin;  // data_start + data_size == file size: cannot overflow
  t.size_bytes = end - begin;
  TS_CHECK(t.offset % esize == 0, kDataLoss, "{}: tensor '{}': data at file offset {} is not aligned to {} bytes",
           label, name, t.offset, esize);
  return t;
}

}  // namespace

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t available, uint64_t file_size,
                                           const std::string& label) {
  TS_CHECK(file_size >= 8 && available >= 8, kDataLoss, "{}: file of {} bytes is too short for a safetensors header",
           label, file_size);
  uint64_t len = 0;
  for (int i = 7; i >= 0; --i) len = (len << 8) | bytes[i];  // little-endian
  TS_CHECK(len <= kMaxSafetensorsHeaderBytes, kDataLoss, "{}: header length {} exceeds the {}-byte limit", label, len,
           kMaxSafetensorsHeaderBytes);
  TS_CHECK(len <= file_size - 8, kDataLoss, "{}: header length {} exceeds the file size {} (truncated?)", label, len,
           file_size);
  TS_CHECK(len <= available - 8, kDataLoss, "{}: only {} header bytes available, header length is {}", label,
           available - 8, len);
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  json header = json::parse(text, text + len, nullptr, /*allow_exceptions=*/false);
  TS_CHECK(!header.is_discarded(), kDataLoss, "{}: header is not valid JSON", label);
  TS_CHECK(header.is_object(), kDataLoss, "{}: header must be a JSON object, got {}", label, header.type_name());

  SafetensorsHeader h;
  h.data_start = 8 + len;
  const uint64_t data_size = file_size - h.data_start;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    h.tensors.push_back(parse_entry(name, entry, data_size, h.data_start, label));
  }
  std::sort(h.tensors.begin(), h.tensors.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) { return a.name < b.name; });
  return h;
}

}  // namespace tessera
