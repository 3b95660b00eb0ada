// MappedFile: a read-only memory map of one whole file (checkpoint shards). Owns the mapping and
// unmaps it on destruction. It must never write through the mapping or outlive-unmap its users:
// holders keep it in a shared_ptr for as long as views into it live.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace tessera {

class MappedFile {
 public:
  // Throws Error(kNotFound) when the file cannot be opened, kDataLoss when it cannot be mapped.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace tessera
