// Engine: the serving core both front doors talk to. It owns the scheduler loop thread, the step
// executor (a model runner or the TP driver) and incremental detokenization; requests enter
// through submit() (thread-safe) and leave through their RequestStream.
// CONTRACT (front doors code against this header; the implementation may add, not change):
//  - submit() never blocks on the scheduler loop; it refuses explicitly by throwing tessera::Error:
//    kResourceExhausted (admission queue full), kUnavailable (draining, stopped or failed engine),
//    kInvalidArgument (prompt empty, prompt + max_tokens over max_model_len, token id out of vocab).
//  - Every submitted request gets exactly one final RequestOutput (finished = true), whatever happens
//    (finished, cancelled, deadline, engine failure): no request is silently dropped.
//  - cancel() on a stream is honoured at the next step; its KV blocks are freed then.
// It must never include gRPC, HTTP or CUDA headers.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/metrics.h"
#include "scheduler/sampling_params.h"
#include "scheduler/step_plan.h"
#include "scheduler/types.h"

namespace tessera {

class Tokenizer;

struct EngineConfig {
  int32_t block_size = 16;               // tokens per KV block
  int32_t num_kv_blocks = 0;             // KV blocks in the cache (> 0; from the runner or --num-kv-blocks)
  int32_t max_num_seqs = 256;            // sequences in one step at most
  int32_t max_num_batched_tokens = 2048; // tokens in one step at most
  int32_t max_model_len = 4096;          // prompt + output tokens of one sequence at most
  int32_t max_queue_len = 1024;          // waiting (not yet running) requests beyond which submit refuses
  bool enable_prefix_caching = true;
  std::vector<TokenId> eos_token_ids;    // the model's end-of-sequence tokens
  int32_t vocab_size = 0;                // prompt ids must be below it; 0 = the tokenizer's vocab_size()
};

struct GenerationRequest {
  std::string request_id;                       // for logs and API ids
  std::vector<TokenId> prompt_token_ids;        // non-empty
  SamplingParams sampling;
  StoppingParams stopping;
  int32_t n = 1;                                // independent choices sharing the prompt's KV blocks
  int32_t priority = 0;                         // higher runs first; FCFS within a priority
  std::optional<std::chrono::steady_clock::time_point> deadline;  // finish with kDeadline after it
  bool skip_special_tokens = true;              // for the streamed text
  // The client's seed. When absent, sampling.seed is used if non-zero, else the engine draws one
  // (so runners always get a seed). A client seed of 0 must travel here.
  std::optional<uint64_t> seed;
};

enum class FinishReason { kStop, kLength, kCancelled, kDeadline, kAborted };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", "deadline", "aborted"

// New output of one choice since the previous RequestOutput.
struct ChoiceDelta {
  int32_t index = 0;                            // choice index, 0 <= index < n
  std::vector<TokenId> token_ids;               // tokens generated since the last delta
  std::string text;                             // their text: whole UTF-8 characters only, stop strings cut
  std::vector<SampledToken> logprobs;           // one per token_ids entry when sampling.logprobs >= 0
  std::optional<FinishReason> finish_reason;    // set once, in the choice's last delta
  std::optional<std::string> stop_reason;       // the stop string or token that ended it, if any
};

struct Usage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;   // over all choices
  int32_t cached_prompt_tokens = 0;
};

struct RequestOutput {
  std::vector<ChoiceDelta> choices;             // only choices with news
  std::optional<PromptLogprobs> prompt_logprobs;  // once, when requested, before any token
  bool finished = false;                        // last output of the request
  Usage usage;                                  // running totals; final when finished
  std::optional<Error> error;                   // set when the engine failed the request
};

// A request's output queue: the engine pushes, one consumer pops.
class RequestStream {
 public:
  explicit RequestStream(std::string request_id) : request_id_(std::move(request_id)) {}
  const std::string& request_id() const { return request_id_; }

  // Consumer side.
  std::optional<RequestOutput> try_pop();
  // Waits up to `timeout` for an output; nullopt on timeout.
  std::optional<RequestOutput> pop(std::chrono::milliseconds timeout);
  // Called from the engine thread after each push; must be cheap and never block (e.g. post to an
  // io_context). Set it before the first output can arrive (right after submit).
  void set_notifier(std::function<void()> notify);
  void cancel() { cancelled_.store(true, std::memory_order_release); }
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // Producer side (engine only).
  void push(RequestOutput out);

 private:
  std::string request_id_;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RequestOutput> queue_;
  std::function<void()> notify_;
};

struct EngineHealth {
  bool alive = false;   // the loop thread runs and its executor has not failed
  bool ready = false;   // alive and admitting (not draining)
  std::string reason;   // why not ready, for /ready and gRPC health
};

class EngineImpl;

class Engine {
 public:
  Engine(EngineConfig config, std::unique_ptr<StepExecutor> executor, std::shared_ptr<const Tokenizer> tokenizer,
         MetricsRegistry& metrics);
  // A token-in, token-out engine with no tokenizer: outputs carry token ids and empty text, and
  // requests with stop strings are refused (kInvalidArgument). Links without the tokenizer library.
  Engine(EngineConfig config, std::unique_ptr<StepExecutor> executor, MetricsRegistry& metrics);
  ~Engine();  // stops the loop; outstanding requests end with kAborted
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  void start();
  std::shared_ptr<RequestStream> submit(GenerationRequest request);
  // Stop admitting; in-flight requests run on. drained() turns true when none is left.
  void begin_drain();
  bool drained() const;
  EngineHealth health() const;
  // Requests submitted and not yet finished (for drain progress and tests).
  int64_t num_unfinished_requests() const;
  const EngineConfig& config() const;

 private:
  std::unique_ptr<EngineImpl> impl_;
};

}  // namespace tessera
