// BPE model (see bpe_model.h).
#include "tokenizer/bpe_model.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <limits>
#include <queue>

#include "common/error.h"
#include "common/utf8.h"

namespace tessera::tok {

namespace {

uint64_t pair_key(TokenId a, TokenId b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

constexpr uint32_t kNoRank = std::numeric_limits<uint32_t>::max();

}  // namespace

BpeModel::BpeModel(const nlohmann::json& model, BpeTables tables) {
  TS_CHECK(model.is_object(), kDataLoss, "tokenizer model must be an object");
  const auto type = model.value("type", std::string("BPE"));
  TS_CHECK(type == "BPE", kUnimplemented, "unsupported tokenizer model type {:?} (only BPE is supported)", type);
  if (model.contains("dropout") && model["dropout"].is_number()) {
    TS_CHECK(model["dropout"].get<double>() == 0.0, kUnimplemented, "BPE dropout {} is not supported",
             model["dropout"].get<double>());
  }
  TS_CHECK(model.contains("vocab") && model["vocab"].is_object(), kDataLoss, "tokenizer BPE model lacks a vocab object");
  int64_t max_id = -1;
  for (const auto& [token, id] : tables.vocab) {
    TS_CHECK(id >= 0 && id < (int64_t{1} << 30), kDataLoss, "tokenizer vocab entry {:?} has id {} out of range", token,
             id);
    max_id = std::max(max_id, id);
  }
  id_to_token_.resize(static_cast<size_t>(max_id + 1));
  has_token_.assign(static_cast<size_t>(max_id + 1), false);
  vocab_.reserve(tables.vocab.size());
  for (auto& [token, id] : tables.vocab) {
    id_to_token_[id] = token;
    has_token_[id] = true;
    vocab_[std::move(token)] = static_cast<TokenId>(id);
  }
  auto opt_str = [&model](const char* key) {
    return model.contains(key) && model[key].is_string() ? model[key].get<std::string>() : std::string();
  };
  prefix_ = opt_str("continuing_subword_prefix");
  suffix_ = opt_str("end_of_word_suffix");
  unk_token_ = opt_str("unk_token");
  if (!unk_token_.empty()) {
    auto it = vocab_.find(unk_token_);
    TS_CHECK(it != vocab_.end(), kDataLoss, "tokenizer unk_token {:?} is not in the vocabulary", unk_token_);
    unk_id_ = it->second;
  }
  fuse_unk_ = model.value("fuse_unk", false);
  byte_fallback_ = model.value("byte_fallback", false);
  ignore_merges_ = model.value("ignore_merges", false);

  has_all_byte_fallback_ = true;
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(fmt::format("<0x{:02X}>", b));
    byte_fallback_ids_[b] = it == vocab_.end() ? -1 : it->second;
    if (it == vocab_.end()) has_all_byte_fallback_ = false;
  }

  bmp_char_ids_.assign(0x10000, -1);
  for (const auto& [tok, id] : vocab_) {
    if (tok.empty() || utf8_char_len(static_cast<unsigned char>(tok[0])) != tok.size()) continue;
    char32_t cp = utf8_decode_at(tok, 0);
    if (cp < 0x10000) bmp_char_ids_[cp] = id;
  }

  merges_.reserve(tables.merges.size());
  std::string merged;
  for (size_t i = 0; i < tables.merges.size(); ++i) {
    const auto& [a, b] = tables.merges[i];
    auto ia = vocab_.find(a), ib = vocab_.find(b);
    TS_CHECK(ia != vocab_.end() && ib != vocab_.end(), kDataLoss, "tokenizer merge #{} ({:?}, {:?}) uses a token not in the vocabulary", i, a, b);
    merged.assign(a);
    if (b.size() >= prefix_.size()) merged.append(b, prefix_.size());
    auto im = vocab_.find(merged);
    TS_CHECK(im != vocab_.end(), kDataLoss, "tokenizer merge #{} result {:?} is not in the vocabulary", i, merged);
    merges_.put(pair_key(ia->second, ib->second), MergeTarget{static_cast<uint32_t>(i), im->second});
  }
}

std::optional<TokenId> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !has_token_[id]) return nullptr;
  return &id_to_token_[id];
}

size_t BpeModel::cache_size() const {
  std::lock_guard lock(cache_mutex_);
  return cache_.size();
}

std::optional<TokenId> BpeModel::char_id(std::string_view ch) const {
  char32_t cp = utf8_decode_at(ch, 0);
  if (cp < 0x10000) {
    TokenId id = bmp_char_ids_[cp];
    if (id < 0) return std::nullopt;
    return id;
  }
  return token_to_id(ch);
}

void BpeModel::initial_symbols(std::string_view word, std::vector<TokenId>& ids) const {
  TokenId pending_unk = -1;  // an unknown-token id not yet emitted (so consecutive ones can fuse)
  std::string buf;
  for (size_t i = 0; i < word.size();) {
    size_t len = utf8_char_len(static_cast<unsigned char>(word[i]));
    if (i + len > word.size()) len = word.size() - i;
    bool is_first = i == 0, is_last = i + len == word.size();
    std::string_view ch = word.substr(i, len);
    std::string_view key = ch;
    std::optional<TokenId> id;
    if ((prefix_.empty() || is_first) && (suffix_.empty() || !is_last)) {
      id = char_id(ch);
    } else {
      buf.clear();
      if (!is_first) buf.append(prefix_);
      buf.append(ch);
      if (is_last) buf.append(suffix_);
      key = buf;
      id = token_to_id(key);
    }
    i += len;
    if (id) {
      if (pending_unk >= 0) {
        ids.push_back(pending_unk);
        pending_unk = -1;
      }
      ids.push_back(*id);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char b : key) all = all && byte_fallback_ids_[b] >= 0;
      if (all) {
        for (unsigned char b : key) ids.push_back(byte_fallback_ids_[b]);
        continue;
      }
    }
    TS_CHECK(unk_id_.has_value(), kInvalidArgument,
             "character {:?} is not in the tokenizer vocabulary and the model has no unk_token", std::string(ch));
    if (pending_unk >= 0 && fuse_unk_) continue;  // fuse consecutive unknowns into one
    if (pending_unk >= 0) ids.push_back(pending_unk);
    pending_unk = *unk_id_;
  }
  if (pending_unk >= 0) ids.push_back(pending_unk);
}

void BpeModel::merge_word(std::string_view word, std::vector<TokenId>& out) const {
  std::vector<TokenId> syms;
  syms.reserve(word.size());
  initial_symbols(word, syms);
  const size_t n = syms.size();
  if (n < 2) {
    out.insert(out.end(), syms.begin(), syms.end());
    return;
  }
  if (n <= 64) {
    // Short words: ranks[i] is the rank of the pair (syms[i], syms[i+1]); merge the lowest,
    // leftmost on ties, and refresh only the two neighbouring pairs.
    std::vector<uint32_t> ranks(n - 1);
    std::vector<TokenId> targets(n - 1);
    auto refresh = [&](size_t i) {
      const auto* m = merges_.find(pair_key(syms[i], syms[i + 1]));
      ranks[i] = m ? m->rank : kNoRank;
      targets[i] = m ? m->id : -1;
    };
    for (size_t i = 0; i + 1 < n; ++i) refresh(i);
    while (!ranks.empty()) {
      size_t best = 0;
      for (size_t i = 1; i < ranks.size(); ++i)
        if (ranks[i] < ranks[best]) best = i;
      if (ranks[best] == kNoRank) break;
      syms[best] = targets[best];
      syms.erase(syms.begin() + static_cast<std::ptrdiff_t>(best) + 1);
      ranks.erase(ranks.begin() + static_cast<std::ptrdiff_t>(best));
      targets.erase(targets.begin() + static_cast<std::ptrdiff_t>(best));
      if (best < ranks.size()) refresh(best);
      if (best > 0) refresh(best - 1);
    }
    out.insert(out.end(), syms.begin(), syms.end());
    return;
  }
  // Long words (runs of spaces, long identifiers): linked list of symbols and a priority queue of
  // candidate merges ordered by (rank, position); stale entries are skipped when popped.
  struct Sym {
    TokenId id;
    int32_t prev, next;
    bool alive;
  };
  struct Cand {
    uint32_t rank;
    uint32_t pos;
    TokenId id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Sym> s(n);
  for (size_t i = 0; i < n; ++i)
    s[i] = {syms[i], static_cast<int32_t>(i) - 1, i + 1 < n ? static_cast<int32_t>(i + 1) : -1, true};
  std::priority_queue<Cand, std::vector<Cand>, std::greater<>> queue;
  for (size_t i = 0; i + 1 < n; ++i)
    if (const auto* m = merges_.find(pair_key(s[i].id, s[i + 1].id)))
      queue.push({m->rank, static_cast<uint32_t>(i), m->id});
  while (!queue.empty()) {
    Cand top = queue.top();
    queue.pop();
    Sym& cur = s[top.pos];
    if (!cur.alive || cur.next < 0) continue;
    Sym& right = s[cur.next];
    const auto* m = merges_.find(pair_key(cur.id, right.id));
    if (!m || m->id != top.id) continue;
    cur.id = top.id;
    right.alive = false;
    cur.next = right.next;
    if (right.next >= 0) s[right.next].prev = static_cast<int32_t>(top.pos);
    if (cur.prev >= 0)
      if (const auto* pm = merges_.find(pair_key(s[cur.prev].id, cur.id)))
        queue.push({pm->rank, static_cast<uint32_t>(cur.prev), pm->id});
    if (cur.next >= 0)
      if (const auto* nm = merges_.find(pair_key(cur.id, s[cur.next].id))) queue.push({nm->rank, top.pos, nm->id});
  }
  for (int32_t i = 0; i >= 0; i = s[i].next) out.push_back(s[i].id);
}

void BpeModel::tokenize(std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  size_t before = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(word), std::vector<TokenId>(out.begin() + static_cast<std::ptrdiff_t>(before), out.end()));
  }
}

}  // namespace tessera::tok
