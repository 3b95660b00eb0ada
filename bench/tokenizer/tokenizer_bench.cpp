// `tessera bench tokenizer --model DIR`: single-thread encode throughput (MB/s of UTF-8 input) on a
// ~10 MB mixed corpus, next to the JavaScript reference (@lenml/tokenizers under node) measured in
// the same run on the same corpus, with a checksum of the ids to show both produced the same tokens.
// It must never report a figure without the reference beside it unless asked (--no-reference).
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bench/tokenizer/tokenizer_bench.h"
#include "common/error.h"
#include "tokenizer/tokenizer.h"

namespace tessera::bench {

namespace {

struct EncodeResult {
  double seconds = 0;
  size_t bytes = 0;
  size_t tokens = 0;
  uint64_t checksum = 0;
};

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a command and returns its standard output; throws when it fails.
std::string run_command(const std::string& cmd) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  TS_CHECK(pipe != nullptr, kUnavailable, "cannot run {}", cmd);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe.get())) > 0) out.append(buf, n);
  int rc = pclose(pipe.release());
  TS_CHECK(rc == 0, kUnavailable, "command failed ({}): {}", rc, cmd);
  return out;
}

std::vector<std::string> read_corpus(const std::string& path) {
  std::ifstream in(path);
  TS_CHECK(in.good(), kNotFound, "cannot open corpus {}", path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    lines.push_back(nlohmann::json::parse(line).get<std::string>());
  }
  return lines;
}

EncodeResult encode_all(const Tokenizer& tok, const std::vector<std::string>& lines) {
  EncodeResult r;
  auto start = std::chrono::steady_clock::now();
  for (const auto& l : lines) {
    auto ids = tok.encode(l, true);
    r.tokens += ids.size();
    for (auto id : ids) r.checksum = (r.checksum * 31 + static_cast<uint64_t>(id)) % 1000000007ULL;
    r.bytes += l.size();
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

int run(const TokenizerBenchOptions& opts) {
  std::string corpus = opts.corpus;
  std::filesystem::path generated;
  if (corpus.empty()) {
    generated = std::filesystem::temp_directory_path() / fmt::format("tessera_tok_bench_{}.jsonl", ::getpid());
    run_command(fmt::format("node {} {} --bytes {}", shell_quote(std::string(TESSERA_SOURCE_DIR) + "/tests/tokenizer/corpus.mjs"),
                            shell_quote(generated.string()), opts.bytes));
    corpus = generated.string();
  }
  auto lines = read_corpus(corpus);
  auto load_start = std::chrono::steady_clock::now();
  auto tok = Tokenizer::from_directory(opts.model_dir);
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  auto ours = encode_all(*tok, lines);
  double ours_mbs = static_cast<double>(ours.bytes) / 1e6 / ours.seconds;
  fmt::print("tokenizer bench: model {}, corpus {} lines, {:.2f} MB, single thread\n", opts.model_dir, lines.size(),
             static_cast<double>(ours.bytes) / 1e6);
  fmt::print("  tessera encode     : {:8.2f} MB/s  ({} tokens, {:.3f} s; load {:.2f} s)\n", ours_mbs, ours.tokens,
             ours.seconds, load_s);
  int rc = 0;
  if (opts.reference) {
    auto out = run_command(fmt::format("node {} {} {}",
                                       shell_quote(std::string(TESSERA_SOURCE_DIR) + "/bench/tokenizer/reference_bench.mjs"),
                                       shell_quote(opts.model_dir), shell_quote(corpus)));
    auto ref = nlohmann::json::parse(out.substr(out.rfind('{')));
    double ref_mbs = ref["bytes"].get<double>() / 1e6 / ref["seconds"].get<double>();
    bool same = ref["tokens"].get<size_t>() == ours.tokens && ref["checksum"].get<uint64_t>() == ours.checksum;
    fmt::print("  reference @lenml   : {:8.2f} MB/s  ({} tokens, {:.3f} s; node {})\n", ref_mbs,
               ref["tokens"].get<size_t>(), ref["seconds"].get<double>(), ref["node"].get<std::string>());
    fmt::print("  speedup            : {:8.1f}x  (target >= 10x); ids {}\n", ours_mbs / ref_mbs,
               same ? "identical (token count and checksum)" : "DIFFER");
    if (!same) rc = 1;
  }
  if (!generated.empty()) std::filesystem::remove(generated);
  return rc;
}

}  // namespace

int run_tokenizer_bench(const TokenizerBenchOptions& opts) { return run(opts); }

}  // namespace tessera::bench
