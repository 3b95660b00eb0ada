// Checkpoint: the tensors of a Hugging Face model directory, memory-mapped: model.safetensors or
// the shards named by model.safetensors.index.json. Hands out typed views by tensor name, so a
// loader (or one tensor-parallel rank) takes exactly the tensors, or slices, it needs.
// It must never copy tensor data, nor hand out a view it has not bounds-checked against its file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/mapped_file.h"
#include "model/safetensors_header.h"

namespace tessera {

// A tensor inside a mapped file. `data` stays valid as long as the Checkpoint lives.
struct TensorView {
  std::string name;
  std::string file;              // for error messages
  const void* data = nullptr;
  std::string dtype_name;        // safetensors name ("BF16", ...)
  std::optional<DType> dtype;
  std::vector<int64_t> shape;
};

class Checkpoint {
 public:
  // Opens dir/model.safetensors.index.json when present, otherwise dir/model.safetensors.
  // Throws kNotFound (no weights), kDataLoss (corrupt or truncated file, named with the tensor).
  static std::shared_ptr<Checkpoint> open(const std::filesystem::path& dir);

  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws kDataLoss naming the missing tensor.
  const TensorView& tensor(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  void add_file(const std::filesystem::path& path, const std::vector<std::string>* expected);

  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorView> tensors_;
};

}  // namespace tessera
