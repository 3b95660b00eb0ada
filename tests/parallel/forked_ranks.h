// Test helper: runs a function as `world` separate processes (fork), one per rank, connected
// through a rendezvous socket the parent binds on 127.0.0.1 port 0 before forking. The parent never
// touches UCX; it waits for the children (bounded) and returns their exit codes. A child that
// throws exits 3 after printing the error; one still alive at the deadline is killed (exit 137).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "parallel/rank_group.h"
#include "parallel/tcp_socket.h"

namespace tessera::parallel::testing {

struct RankContext {
  int rank;
  int world_size;
  std::string rendezvous;  // "127.0.0.1:PORT"
  Fd listener;             // rank 0 only
};

inline std::vector<int> run_forked_ranks(int world, const std::function<int(RankContext&)>& fn,
                                         std::chrono::seconds limit = std::chrono::seconds(60),
                                         std::vector<pid_t>* pids_out = nullptr,
                                         const std::function<void(const std::vector<pid_t>&)>& while_running = {},
                                         int frozen_rank = -1) {
  Fd listener = listen_tcp("127.0.0.1", 0);
  const std::string addr = "127.0.0.1:" + std::to_string(local_port(listener));
  std::fflush(nullptr);
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    const pid_t pid = fork();
    if (pid == 0) {
      int rc = 0;
      try {
        RankContext ctx{r, world, addr, r == 0 ? std::move(listener) : Fd()};
        if (r != 0) listener = Fd();
        rc = fn(ctx);
      } catch (const Error& e) {
        std::fprintf(stderr, "rank %d: %s: %s\n", r, error_code_name(e.code()), e.what());
        rc = 3;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "rank %d: %s\n", r, e.what());
        rc = 4;
      }
      std::fflush(nullptr);
      _exit(rc);
    }
    pids.push_back(pid);
  }
  listener = Fd();
  if (pids_out) *pids_out = pids;
  if (while_running) while_running(pids);
  std::vector<int> codes(world, -1);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int left = world;
  while (left > 0) {
    for (int r = 0; r < world; ++r) {
      if (codes[r] != -1) continue;
      int status = 0;
      if (waitpid(pids[r], &status, WNOHANG) == pids[r]) {
        codes[r] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        --left;
      }
    }
    // A rank frozen by the test (SIGSTOP) is killed once every other rank has exited.
    if (frozen_rank >= 0 && left == 1 && codes[frozen_rank] == -1) kill(pids[frozen_rank], SIGKILL);
    if (left > 0 && std::chrono::steady_clock::now() > deadline) {
      for (int r = 0; r < world; ++r)
        if (codes[r] == -1) kill(pids[r], SIGKILL);
    }
    if (left > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return codes;
}

// The fixed secret used by tests (a launch would draw a random one).
inline LaunchSecret test_secret() { return LaunchSecret::from_hex("000102030405060708090a0b0c0d0e0f"); }

inline std::unique_ptr<RankGroup> join_test_group(RankContext& ctx, std::chrono::milliseconds collective_timeout =
                                                                        std::chrono::milliseconds(20000),
                                                  std::chrono::milliseconds heartbeat_timeout =
                                                      std::chrono::milliseconds(10000)) {
  RankGroupConfig c;
  c.rank = ctx.rank;
  c.world_size = ctx.world_size;
  c.rendezvous = ctx.rendezvous;
  c.fingerprint = sha256(std::vector<uint8_t>{1, 2, 3});
  c.description = "test";
  c.rendezvous_timeout = std::chrono::milliseconds(20000);
  c.collective_timeout = collective_timeout;
  c.liveness.timeout = heartbeat_timeout;
  return RankGroup::join(c, test_secret(), std::move(ctx.listener));
}

}  // namespace tessera::parallel::testing
