// LaunchPlan resolution from flags and from the environments LeaderWorkerSet, Slurm, Open MPI and
// PMI set; contradictions are refused naming the values.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "common/error.h"
#include "parallel/launch_plan.h"

namespace tessera::parallel {
namespace {

GetEnv env_of(std::map<std::string, std::string> m) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(m));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

ParallelOptions opts(int tp, int nnodes = 1, int node_rank = -1, std::string rdzv = "") {
  ParallelOptions o;
  o.tp = tp;
  o.nnodes = nnodes;
  o.node_rank = node_rank;
  o.rendezvous = std::move(rdzv);
  return o;
}

TEST(LaunchPlan, SingleNodeSpawnsEveryRankLocally) {
  const auto p = resolve_launch_plan(opts(4), env_of({}));
  EXPECT_EQ(p.world_size, 4);
  EXPECT_EQ(p.first_rank, 0);
  EXPECT_EQ(p.local_ranks, 4);
  EXPECT_TRUE(p.rendezvous.empty());
  EXPECT_EQ(p.source, "flags");
}

TEST(LaunchPlan, FlagsPlaceANodeOfAMultiNodeJob) {
  const auto p = resolve_launch_plan(opts(16, 2, 1, "10.0.0.1:29500"), env_of({}));
  EXPECT_EQ(p.ranks_per_node, 8);
  EXPECT_EQ(p.first_rank, 8);
  EXPECT_EQ(p.local_ranks, 8);
  EXPECT_THROW(resolve_launch_plan(opts(16, 2, 1), env_of({})), Error);           // no rendezvous
  EXPECT_THROW(resolve_launch_plan(opts(16, 2, -1, "h:1"), env_of({})), Error);  // no node rank
  EXPECT_THROW(resolve_launch_plan(opts(16, 2, 2, "h:1"), env_of({})), Error);   // node rank too big
}

TEST(LaunchPlan, LeaderWorkerSetGivesNodesNodeRankAndLeader) {
  const auto p = resolve_launch_plan(
      opts(8), env_of({{"LWS_LEADER_ADDRESS", "tessera-0.tessera"}, {"LWS_GROUP_SIZE", "2"}, {"LWS_WORKER_INDEX", "1"}}));
  EXPECT_EQ(p.source, "LeaderWorkerSet");
  EXPECT_EQ(p.nnodes, 2);
  EXPECT_EQ(p.node_rank, 1);
  EXPECT_EQ(p.first_rank, 4);
  EXPECT_EQ(p.rendezvous, "tessera-0.tessera:29500");
  try {
    resolve_launch_plan(opts(8, 4), env_of({{"LWS_LEADER_ADDRESS", "a"}, {"LWS_GROUP_SIZE", "2"},
                                            {"LWS_WORKER_INDEX", "0"}}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--nnodes 4 but LWS_GROUP_SIZE=2"), std::string::npos) << e.what();
  }
}

TEST(LaunchPlan, SlurmOneTaskPerRank) {
  const auto p = resolve_launch_plan(opts(8, 2, -1, "node1:29500"),
                                     env_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"}}));
  EXPECT_EQ(p.source, "Slurm");
  EXPECT_EQ(p.first_rank, 5);
  EXPECT_EQ(p.local_ranks, 1);
  EXPECT_EQ(p.node_rank, 1);
  EXPECT_EQ(p.first_local_index, 1);
}

TEST(LaunchPlan, SlurmOneTaskPerNode) {
  const auto p = resolve_launch_plan(opts(8, 2, -1, "node1:29500"),
                                     env_of({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "0"}}));
  EXPECT_EQ(p.node_rank, 1);
  EXPECT_EQ(p.first_rank, 4);
  EXPECT_EQ(p.local_ranks, 4);
}

TEST(LaunchPlan, OpenMpiAndPmiAreRead) {
  auto p = resolve_launch_plan(opts(4, 1, -1, "h:2"), env_of({{"OMPI_COMM_WORLD_RANK", "3"},
                                                              {"OMPI_COMM_WORLD_SIZE", "4"},
                                                              {"OMPI_COMM_WORLD_LOCAL_RANK", "3"}}));
  EXPECT_EQ(p.source, "Open MPI");
  EXPECT_EQ(p.first_rank, 3);
  p = resolve_launch_plan(opts(4, 2, -1, "h:2"), env_of({{"PMI_RANK", "1"}, {"PMI_SIZE", "2"}}));
  EXPECT_EQ(p.source, "PMI");
  EXPECT_EQ(p.first_rank, 2);
  EXPECT_EQ(p.local_ranks, 2);
}

TEST(LaunchPlan, ContradictionsAreRefused) {
  try {
    resolve_launch_plan(opts(8, 2, -1, "h:1"), env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "3"}}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Slurm started 3 processes"), std::string::npos) << e.what();
  }
  EXPECT_THROW(resolve_launch_plan(opts(6, 4, 0, "h:1"), env_of({})), Error);  // 6 ranks over 4 nodes
  EXPECT_THROW(resolve_launch_plan(opts(4), env_of({{"SLURM_PROCID", "x"}, {"SLURM_NTASKS", "4"}})), Error);
  EXPECT_THROW(resolve_launch_plan(opts(4), env_of({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "4"}})), Error);  // no rdzv
  EXPECT_THROW(resolve_launch_plan(opts(0), env_of({})), Error);
}

}  // namespace
}  // namespace tessera::parallel
