// Workload generation: synthetic ids or words with seeded lengths, or prompts from a JSONL file.
#include "bench/serve/workload.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "common/error.h"

namespace tessera::bench {
namespace {

constexpr const char* kWords[] = {
    "the",   "model", "serves", "tokens", "quickly", "across", "many", "requests", "while", "keeping",
    "every", "cache", "block",  "warm",   "under",   "load",   "with", "stable",   "tail",  "latency",
    "river", "stone", "light",  "garden", "number",  "signal", "paper", "window",  "market", "engine"};

int32_t draw_len(std::mt19937_64& rng, int32_t len, double ratio) {
  if (ratio <= 0.0) return len;
  const int32_t lo = std::max<int32_t>(1, static_cast<int32_t>(std::floor(len * (1.0 - ratio))));
  const int32_t hi = std::max<int32_t>(lo, static_cast<int32_t>(std::ceil(len * (1.0 + ratio))));
  return std::uniform_int_distribution<int32_t>(lo, hi)(rng);
}

struct DatasetLine {
  std::string prompt;
  int32_t output_len;
};

std::vector<DatasetLine> read_dataset(const std::string& path, int32_t default_output_len) {
  std::ifstream in(path);
  TS_CHECK(in.good(), kNotFound, "cannot open dataset file '{}'", path);
  std::vector<DatasetLine> lines;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    TS_CHECK(!j.is_discarded() && j.is_object(), kInvalidArgument, "{}:{}: not a JSON object", path, lineno);
    TS_CHECK(j.contains("prompt") && j["prompt"].is_string(), kInvalidArgument,
             "{}:{}: needs a string field \"prompt\"", path, lineno);
    int32_t out_len = default_output_len;
    if (j.contains("output_len")) {
      TS_CHECK(j["output_len"].is_number_integer() && j["output_len"].get<int64_t>() > 0 &&
                   j["output_len"].get<int64_t>() < (1 << 24),
               kInvalidArgument, "{}:{}: output_len must be a positive integer, got {}", path, lineno,
               j["output_len"].dump());
      out_len = j["output_len"].get<int32_t>();
    }
    lines.push_back({j["prompt"].get<std::string>(), out_len});
  }
  TS_CHECK(!lines.empty(), kInvalidArgument, "dataset file '{}' holds no prompts", path);
  return lines;
}

}  // namespace

std::vector<WorkItem> build_workload(const LoadOptions& options, int32_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<WorkItem> items;
  items.reserve(count);
  if (!options.lengths.dataset_path.empty()) {
    const auto lines = read_dataset(options.lengths.dataset_path, options.lengths.output_len);
    for (int32_t i = 0; i < count; ++i) {
      const auto& l = lines[static_cast<size_t>(i) % lines.size()];
      WorkItem w;
      w.prompt_text = l.prompt;
      w.input_len = static_cast<int32_t>(l.prompt.size());
      w.output_len = l.output_len;
      items.push_back(std::move(w));
    }
    return items;
  }
  TS_CHECK(options.id_low >= 0 && options.id_high > options.id_low, kInvalidArgument,
           "token id range [{}, {}) is empty", options.id_low, options.id_high);
  std::uniform_int_distribution<int32_t> id_dist(options.id_low, options.id_high - 1);
  std::uniform_int_distribution<size_t> word_dist(0, std::size(kWords) - 1);
  for (int32_t i = 0; i < count; ++i) {
    WorkItem w;
    w.input_len = draw_len(rng, options.lengths.input_len, options.lengths.range_ratio);
    w.output_len = draw_len(rng, options.lengths.output_len, options.lengths.range_ratio);
    if (options.prompt_as_ids && options.target.api == ApiKind::kCompletions) {
      w.prompt_ids.resize(w.input_len);
      for (auto& id : w.prompt_ids) id = id_dist(rng);
    } else {
      for (int32_t k = 0; k < w.input_len; ++k) {
        if (k) w.prompt_text.push_back(' ');
        w.prompt_text += kWords[word_dist(rng)];
      }
    }
    items.push_back(std::move(w));
  }
  return items;
}

std::vector<double> poisson_arrivals(int32_t count, double rate, uint64_t seed) {
  std::vector<double> at(count, 0.0);
  if (!(rate > 0.0) || std::isinf(rate)) return at;
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ull);
  std::exponential_distribution<double> gap(rate);
  double t = 0.0;
  for (int32_t i = 0; i < count; ++i) {
    at[i] = t;
    t += gap(rng);
  }
  return at;
}

}  // namespace tessera::bench
