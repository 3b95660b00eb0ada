// copy_tiles_holding_rows (model/logit_tiles.h): the tiles a pruned last layer's attention runs over.
#include "model/logit_tiles.h"

#include <gtest/gtest.h>

#include <vector>

namespace tessera {
namespace {

struct Tile {
  int32_t q_row = 0;
  int32_t q_len = 0;
  bool operator==(const Tile&) const = default;
};

std::vector<Tile> holding(const std::vector<Tile>& tiles, const std::vector<int32_t>& rows) {
  std::vector<Tile> out(tiles.size() + 1, Tile{-1, -1});
  const int32_t n = copy_tiles_holding_rows(tiles.data(), static_cast<int32_t>(tiles.size()), rows.data(),
                                            static_cast<int32_t>(rows.size()), out.data());
  EXPECT_EQ(out[static_cast<size_t>(n)], (Tile{-1, -1})) << "wrote past the count it returned";
  out.resize(static_cast<size_t>(n));
  return out;
}

TEST(LogitTiles, TwoPromptsKeepEachLastTile) {
  // Prompts of 70 and 40 rows in 32-row tiles: rows 0-69 then 70-109; logits of rows 69 and 109.
  const std::vector<Tile> tiles = {{0, 32}, {32, 32}, {64, 6}, {70, 32}, {102, 8}};
  EXPECT_EQ(holding(tiles, {69, 109}), (std::vector<Tile>{{64, 6}, {102, 8}}));
}

TEST(LogitTiles, MixedStepKeepsDecodeTilesAndTheChunksLast) {
  // A decode row, a 100-row prompt chunk that samples, another decode row, a chunk that does not sample.
  const std::vector<Tile> tiles = {{0, 1}, {1, 32}, {33, 32}, {65, 32}, {97, 4}, {101, 1}, {102, 32}};
  EXPECT_EQ(holding(tiles, {0, 100, 101}), (std::vector<Tile>{{0, 1}, {97, 4}, {101, 1}}));
}

TEST(LogitTiles, NoLogitRowsNoTiles) {
  const std::vector<Tile> tiles = {{0, 32}, {32, 8}};
  EXPECT_TRUE(holding(tiles, {}).empty());
  EXPECT_TRUE(holding({}, {3}).empty());
}

TEST(LogitTiles, ATileHoldingSeveralRowsIsCopiedOnce) {
  // Full-logit style: every row of the tiles wanted.
  const std::vector<Tile> tiles = {{0, 4}, {4, 4}};
  EXPECT_EQ(holding(tiles, {0, 1, 2, 3, 4, 5, 6, 7}), tiles);
  EXPECT_EQ(holding(tiles, {3, 4}), tiles);
}

TEST(LogitTiles, RowsOnTileEdges) {
  const std::vector<Tile> tiles = {{0, 16}, {16, 16}, {32, 16}};
  EXPECT_EQ(holding(tiles, {15}), (std::vector<Tile>{{0, 16}}));
  EXPECT_EQ(holding(tiles, {16}), (std::vector<Tile>{{16, 16}}));
  EXPECT_EQ(holding(tiles, {47}), (std::vector<Tile>{{32, 16}}));
  EXPECT_TRUE(holding(tiles, {48}).empty()) << "a row past every tile holds none";
}

TEST(LogitTiles, OutputJustPastTheInputIsSafe) {
  // The runner writes the selected tiles right after the step's own in one array.
  std::vector<Tile> buf = {{0, 8}, {8, 8}, {16, 8}, {}, {}, {}};
  const std::vector<int32_t> rows = {7, 23};
  const int32_t n = copy_tiles_holding_rows(buf.data(), 3, rows.data(), 2, buf.data() + 3);
  ASSERT_EQ(n, 2);
  EXPECT_EQ(buf[3], (Tile{0, 8}));
  EXPECT_EQ(buf[4], (Tile{16, 8}));
  EXPECT_EQ(buf[0], (Tile{0, 8})) << "the input tiles are left as they were";
}

}  // namespace
}  // namespace tessera
