// Joining a TP group: UCX worker, rendezvous, endpoints, liveness, first barrier (see rank_group.h).
#include "parallel/rank_group.h"

#include <spdlog/spdlog.h>

namespace tessera::parallel {

std::unique_ptr<RankGroup> RankGroup::join(const RankGroupConfig& config, const LaunchSecret& secret, Fd listener) {
  std::unique_ptr<RankGroup> g(new RankGroup);
  g->config_ = config;
  g->secret_ = secret;
  g->health_ = std::make_shared<GroupHealth>();
  g->comm_ = std::make_unique<UcxCommunicator>(config.rank, config.world_size, g->health_, config.collective_timeout);
  RendezvousConfig rc;
  rc.address = config.rendezvous;
  rc.rank = config.rank;
  rc.world_size = config.world_size;
  rc.fingerprint = config.fingerprint;
  rc.description = config.description;
  rc.transport_address = g->comm_->worker_address();
  rc.timeout = config.rendezvous_timeout;
  RendezvousResult rr = rendezvous(rc, secret, std::move(listener));
  g->comm_->connect(rr.transport_addresses);
  g->liveness_ = std::make_unique<Liveness>(config.rank, std::move(rr.control), g->health_, config.liveness);
  g->comm_->barrier();
  spdlog::debug("rank {} of {}: group joined", config.rank, config.world_size);
  return g;
}

RankGroup::~RankGroup() {
  liveness_.reset();
  comm_.reset();
}

void RankGroup::shutdown(std::chrono::milliseconds wait) {
  if (liveness_) liveness_->goodbye(wait);
}

void RankGroup::abort(const std::string& reason) {
  if (liveness_) liveness_->abort(reason);
  if (comm_) comm_->abort(reason);
}

}  // namespace tessera::parallel
