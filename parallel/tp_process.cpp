// Local rank spawning, secret handling and group joining for one process (see tp_process.h).
#include "parallel/tp_process.h"

#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "common/error.h"

extern char** environ;

namespace tessera::parallel {
namespace {

LaunchSecret obtain_secret(const ParallelOptions& o, const LaunchPlan& p, const GetEnv& getenv) {
  if (!o.secret_file.empty()) return LaunchSecret::from_file(o.secret_file);
  if (const char* hex = getenv(kSecretEnv); hex && *hex) return LaunchSecret::from_hex(hex);
  if (const char* file = getenv(kSecretFileEnv); file && *file) return LaunchSecret::from_file(file);
  TS_CHECK(p.nnodes == 1 && p.local_ranks == p.world_size, kInvalidArgument,
           "a tensor-parallel job across processes started by {} ({} nodes) needs a launch secret shared by every "
           "rank: pass --tp-secret-file FILE or set {} (32 hex digits, e.g. from `openssl rand -hex 16`)",
           p.source, p.nnodes, kSecretEnv);
  return LaunchSecret::generate();
}

pid_t spawn_rank(const std::string& exe, const std::vector<std::string>& args, const std::vector<std::string>& env) {
  std::vector<char*> argv, envp;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv.data(), envp.data());
  TS_CHECK(rc == 0, kUnavailable, "cannot start a rank process '{}': {}", exe, std::strerror(rc));
  return pid;
}

// The current environment with our variables replaced.
std::vector<std::string> child_env(const std::vector<std::pair<std::string, std::string>>& set) {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv = *e;
    bool replaced = false;
    for (const auto& [k, v] : set) replaced = replaced || kv.rfind(k + "=", 0) == 0;
    if (!replaced) out.push_back(kv);
  }
  for (const auto& [k, v] : set) out.push_back(k + "=" + v);
  return out;
}

}  // namespace

std::unique_ptr<TpProcess> TpProcess::start(const TpProcessConfig& c, const GetEnv& getenv) {
  std::unique_ptr<TpProcess> t(new TpProcess);
  t->plan_ = resolve_launch_plan(c.options, getenv);
  const LaunchPlan& p = t->plan_;
  const LaunchSecret secret = obtain_secret(c.options, p, getenv);
  Fd listener;
  std::string rendezvous = p.rendezvous;
  if (p.first_rank == 0 && p.world_size > 1) {
    if (rendezvous.empty()) {
      listener = listen_tcp("127.0.0.1", 0);
      rendezvous = "127.0.0.1:" + std::to_string(local_port(listener));
    } else {
      listener = listen_tcp("", parse_host_port(rendezvous).port);  // every interface
    }
  }
  for (int i = 1; i < p.local_ranks; ++i) {
    const int rank = p.first_rank + i;
    std::vector<std::string> args = c.worker_args;
    for (const std::string& a :
         {std::string("--rank"), std::to_string(rank), std::string("--tp"), std::to_string(p.world_size),
          std::string("--rendezvous"), rendezvous, std::string("--local-index"),
          std::to_string(p.first_local_index + i), std::string("--tp-collective-timeout-ms"),
          std::to_string(c.options.collective_timeout_ms), std::string("--tp-heartbeat-timeout-ms"),
          std::to_string(c.options.heartbeat_timeout_ms), std::string("--rendezvous-timeout"),
          std::to_string(c.options.rendezvous_timeout_s), std::string("--tp-backend"), c.options.backend,
          std::string("--tp-ranks-per-device"), std::to_string(c.options.ranks_per_device)})
      args.push_back(a);
    const auto env = child_env({{kSecretEnv, secret.to_hex()},
                                {kRankEnv, std::to_string(rank)},
                                {kWorldEnv, std::to_string(p.world_size)},
                                {kRendezvousEnv, rendezvous},
                                {kLocalIndexEnv, std::to_string(p.first_local_index + i)}});
    t->children_.push_back(spawn_rank(c.exe, args, env));
  }
  spdlog::info("tensor parallel: rank {} of {} (node {} of {}, placement from {}), {} local ranks spawned",
               p.first_rank, p.world_size, p.node_rank, p.nnodes, p.source, t->children_.size());
  RankGroupConfig g;
  g.rank = p.first_rank;
  g.world_size = p.world_size;
  g.rendezvous = rendezvous;
  g.fingerprint = c.fingerprint.digest;
  g.description = c.fingerprint.description;
  g.rendezvous_timeout = std::chrono::seconds(c.options.rendezvous_timeout_s);
  g.collective_timeout = std::chrono::milliseconds(c.options.collective_timeout_ms);
  g.liveness.timeout = std::chrono::milliseconds(c.options.heartbeat_timeout_ms);
  try {
    t->group_ = RankGroup::join(g, secret, std::move(listener));
  } catch (...) {
    t->reap(std::chrono::milliseconds(2000));
    throw;
  }
  return t;
}

int TpProcess::reap(std::chrono::milliseconds wait) {
  int worst = 0;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (pid_t& pid : children_) {
    if (pid <= 0) continue;
    int status = 0;
    pid_t r = 0;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (r == 0) {
      spdlog::warn("tensor parallel: rank process {} did not exit in time; killing it", pid);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    worst = std::max(worst, code);
    pid = -1;
  }
  return worst;
}

TpProcess::~TpProcess() {
  group_.reset();
  reap(std::chrono::milliseconds(5000));
}

}  // namespace tessera::parallel
