// StopStringMatcher: earliest match in the held-back text plus the new piece; hold back a tail.
#include "engine/stop_string_matcher.h"

#include <algorithm>

namespace tessera {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops, bool include_stop_in_output)
    : stops_(std::move(stops)), include_(include_stop_in_output) {
  for (const auto& s : stops_) max_len_ = std::max(max_len_, s.size());
}

std::string StopStringMatcher::push(std::string_view text) {
  if (matched_) return {};
  if (stops_.empty()) return std::string(text);
  held_.append(text);
  // No complete stop string was in held_ before, so any match involves the new text.
  size_t best = std::string::npos;
  const std::string* best_stop = nullptr;
  for (const auto& s : stops_) {
    const size_t p = held_.find(s);
    if (p != std::string::npos && (p < best || (p == best && s.size() > best_stop->size()))) {
      best = p;
      best_stop = &s;
    }
  }
  if (best_stop != nullptr) {
    std::string out = held_.substr(0, include_ ? best + best_stop->size() : best);
    matched_ = *best_stop;
    held_.clear();
    return out;
  }
  const size_t keep = std::min(held_.size(), max_len_ - 1);
  size_t cut = held_.size() - keep;
  // Never split a UTF-8 character: back up to the first byte of the character at `cut`.
  while (cut > 0 && (static_cast<unsigned char>(held_[cut]) & 0xC0) == 0x80) --cut;
  std::string out = held_.substr(0, cut);
  held_.erase(0, cut);
  return out;
}

std::string StopStringMatcher::flush() {
  if (matched_) return {};
  std::string out = std::move(held_);
  held_.clear();
  return out;
}

}  // namespace tessera
