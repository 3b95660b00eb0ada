// SplitDelimiterBehavior semantics (see split_behavior.h).
#include "tokenizer/split_behavior.h"

#include "common/error.h"

namespace tessera::tok {

SplitBehavior parse_split_behavior(std::string_view name) {
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  TS_THROW(kUnimplemented, "unsupported split behavior {:?}", name);
}

void segments_from_matches(size_t size, const std::vector<Match>& matches, bool invert, std::vector<Segment>& out) {
  out.clear();
  size_t prev = 0;
  for (const auto& m : matches) {
    if (m.start > prev) out.push_back({prev, m.start, invert});
    out.push_back({m.start, m.end, !invert});
    prev = m.end;
  }
  if (prev < size) out.push_back({prev, size, invert});
}

void apply_split_behavior(const std::vector<Segment>& segs, SplitBehavior behavior, std::vector<Match>& out) {
  auto push = [&out](size_t s, size_t e) {
    if (e > s) out.push_back({s, e});
  };
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const auto& s : segs) push(s.start, s.end);
      return;
    case SplitBehavior::kRemoved:
      for (const auto& s : segs)
        if (!s.is_match) push(s.start, s.end);
      return;
    case SplitBehavior::kContiguous:
    case SplitBehavior::kMergedWithPrevious: {
      std::vector<Match> acc;
      bool prev_match = false;
      for (const auto& s : segs) {
        bool merge = behavior == SplitBehavior::kContiguous ? s.is_match == prev_match : (s.is_match && !prev_match);
        if (merge && !acc.empty()) {
          acc.back().end = s.end;
        } else {
          acc.push_back({s.start, s.end});
        }
        prev_match = s.is_match;
      }
      for (const auto& m : acc) push(m.start, m.end);
      return;
    }
    case SplitBehavior::kMergedWithNext: {
      std::vector<Match> acc;
      bool prev_match = false;
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->is_match && !prev_match && !acc.empty()) {
          acc.back().start = it->start;
        } else {
          acc.push_back({it->start, it->end});
        }
        prev_match = it->is_match;
      }
      for (auto it = acc.rbegin(); it != acc.rend(); ++it) push(it->start, it->end);
      return;
    }
  }
}

}  // namespace tessera::tok
