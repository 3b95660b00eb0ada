// How a pre-tokenizer cuts a string at pattern matches (tokenizers' SplitDelimiterBehavior):
// from a list of matches, produce the byte ranges of the pieces. Pure functions over offsets.
// It must never produce an empty piece or a range outside the subject.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace tessera::tok {

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Parses "Removed", "Isolated", ...; throws Error(kUnimplemented) naming an unknown value.
SplitBehavior parse_split_behavior(std::string_view name);

struct Segment {
  size_t start;
  size_t end;
  bool is_match;
};

// Covers [0, size) with the matches and the gaps between them; `invert` flips which are matches.
void segments_from_matches(size_t size, const std::vector<Match>& matches, bool invert, std::vector<Segment>& out);

// Applies the behavior; appends the non-empty pieces' [start, end) to `out`.
void apply_split_behavior(const std::vector<Segment>& segments, SplitBehavior behavior, std::vector<Match>& out);

}  // namespace tessera::tok
