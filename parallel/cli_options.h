// The tensor-parallel flags of `tessera serve` (and `tessera worker`): --tp, --nnodes, --node-rank,
// --rendezvous, --tp-secret-file, --tp-backend, --tp-ranks-per-device and the failure-detection
// timeouts. The serve command calls add_parallel_options() once; the values land in a
// ParallelOptions it owns.
// It must never read the environment (resolve_launch_plan does, after parsing).
#pragma once

#include <CLI/CLI.hpp>

#include "parallel/launch_plan.h"

namespace tessera::parallel {

void add_parallel_options(CLI::App* app, ParallelOptions& options);

}  // namespace tessera::parallel
