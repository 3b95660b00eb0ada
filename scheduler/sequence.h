// Sequence: the scheduler's state of one choice of one request (tokens, computed count, KV block
// table, what the runner has been told). SequenceGroup: what the choices of one request share.
// Plain data owned by the Scheduler; it must never be handed to a runner (StepPlan copies from it).
#pragma once

#include <cstdint>
#include <memory>
#include <tuple>
#include <vector>

#include "scheduler/block_hash.h"
#include "scheduler/sampling_params.h"
#include "scheduler/types.h"

namespace tessera {

enum class SeqStatus { kWaiting, kRunning };

// Why the scheduler ended a sequence on its own (token-level rules; stop strings are the engine's).
enum class SeqFinish { kNone, kStopToken, kEos, kLength };

struct SequenceGroup {
  uint64_t arrival = 0;          // FCFS order of requests
  int32_t priority = 0;          // higher runs first
  int32_t num_live = 0;          // choices not finished yet
  bool started = false;          // some choice has been admitted to run
  SeqId leader = 0;              // choice 0: its computed prompt blocks are shared with the others
};

// Order of the waiting queue: higher priority first, preempted work ahead of new work, then FCFS.
using WaitKey = std::tuple<int32_t, int32_t, uint64_t, SeqId>;

struct Sequence {
  SeqId id = 0;
  int32_t child_index = 0;
  std::shared_ptr<SequenceGroup> group;
  std::vector<TokenId> tokens;           // prompt, then outputs
  int32_t num_prompt_tokens = 0;
  int32_t num_computed = 0;              // tokens whose KV is in the cache (accepted steps only)
  std::vector<BlockId> blocks;           // block table: block i holds tokens [i*bs, (i+1)*bs)
  int32_t num_hashed_blocks = 0;         // leading blocks whose content hash is known
  uint64_t last_hash = kNoParentHash;    // hash of block num_hashed_blocks - 1
  SamplingParams sampling;
  StoppingParams stopping;
  SeqStatus status = SeqStatus::kWaiting;
  bool preempted = false;                // has been preempted at least once (requeued ahead)
  bool prompt_logprobs_pending = false;  // prompt logprobs wanted and the prompt not computed yet
  WaitKey wait_key{};
  int32_t num_cached_prompt_tokens = -1; // prompt tokens found in KV at first admission (-1: not yet)
  // What the runner knows (valid while runner_knows).
  bool runner_knows = false;
  size_t runner_tokens = 0;              // tokens[0, runner_tokens) sent
  size_t runner_blocks = 0;              // blocks[0, runner_blocks) sent

  int32_t num_tokens() const { return static_cast<int32_t>(tokens.size()); }
  int32_t num_output_tokens() const { return num_tokens() - num_prompt_tokens; }
  int32_t priority() const { return group->priority; }
  uint64_t arrival() const { return group->arrival; }
};

}  // namespace tessera
