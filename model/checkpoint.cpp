// Checkpoint: opens single-file or sharded safetensors checkpoints (see checkpoint.h).
#include "model/checkpoint.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <set>

#include "common/error.h"

namespace tessera {
namespace {

// Shard names come from a file: accept only plain names inside the model directory.
void check_shard_name(const std::string& name, const std::string& index) {
  TS_CHECK(!name.empty() && name.find('/') == std::string::npos && name.find('\\') == std::string::npos &&
               name != "." && name != "..",
           kDataLoss, "{}: shard file name \"{}\" is not a plain file name", index, name);
}

}  // namespace

std::shared_ptr<Checkpoint> Checkpoint::open(const std::filesystem::path& dir) {
  auto ck = std::shared_ptr<Checkpoint>(new Checkpoint());
  const auto index = dir / "model.safetensors.index.json";
  if (std::filesystem::exists(index)) {
    std::ifstream in(index);
    TS_CHECK(in.good(), kNotFound, "cannot open {}", index.string());
    const auto j = nlohmann::json::parse(in, nullptr, false);
    TS_CHECK(!j.is_discarded() && j.is_object(), kDataLoss, "{} is not a JSON object", index.string());
    TS_CHECK(j.contains("weight_map") && j["weight_map"].is_object(), kDataLoss, "{}: missing object 'weight_map'",
             index.string());
    std::map<std::string, std::vector<std::string>> by_file;
    for (const auto& [tensor, file] : j["weight_map"].items()) {
      TS_CHECK(file.is_string(), kDataLoss, "{}: weight_map['{}'] must be a file name, got {}", index.string(), tensor,
               file.dump());
      check_shard_name(file.get<std::string>(), index.string());
      by_file[file.get<std::string>()].push_back(tensor);
    }
    TS_CHECK(!by_file.empty(), kDataLoss, "{}: weight_map is empty", index.string());
    for (const auto& [file, tensors] : by_file) ck->add_file(dir / file, &tensors);
  } else {
    const auto single = dir / "model.safetensors";
    TS_CHECK(std::filesystem::exists(single), kNotFound,
             "no model.safetensors or model.safetensors.index.json in {}", dir.string());
    ck->add_file(single, nullptr);
  }
  return ck;
}

void Checkpoint::add_file(const std::filesystem::path& path, const std::vector<std::string>* expected) {
  auto file = std::make_unique<MappedFile>(path);
  const std::string label = path.filename().string();
  const SafetensorsHeader h = parse_safetensors_header(file->data(), file->size(), file->size(), label);
  for (const SafetensorsEntry& e : h.tensors) {
    TS_CHECK(tensors_.count(e.name) == 0, kDataLoss, "{}: tensor '{}' appears in two files ({} and {})", label,
             e.name, tensors_.at(e.name).file, label);
    TensorView v{e.name, label, file->data() + e.offset, e.dtype_name, e.dtype, e.shape};
    tensors_.emplace(e.name, std::move(v));
  }
  if (expected != nullptr) {
    for (const std::string& name : *expected) {
      TS_CHECK(tensors_.count(name) != 0 && tensors_.at(name).file == label, kDataLoss,
               "{}: tensor '{}' listed in the index is not in this file", label, name);
    }
  }
  files_.push_back(std::move(file));
}

const TensorView& Checkpoint::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  TS_CHECK(it != tensors_.end(), kDataLoss, "checkpoint has no tensor '{}'", name);
  return it->second;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, v] : tensors_) out.push_back(name);
  return out;
}

}  // namespace tessera
