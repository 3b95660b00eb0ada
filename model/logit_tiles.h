// Which attention tiles of a step hold a row whose logits the step computes: with the last layer pruned
// (CudaRunnerOptions::prune_last_layer) that layer's attention runs over these tiles only. Pure
// host-side arithmetic on plain data (a tile type with q_row and q_len, as kernels/cuda/attention.cuh's
// AttentionTile); it never allocates and never touches a device.
#pragma once

#include <cstdint>

namespace tessera {

// Copies to out[0..) every tile of tiles[0, ntiles) holding at least one of rows[0, nrows), in tile
// order, each once; returns how many. Tiles and rows must both be ascending by row (a step lays them
// out so). out may point just past the tiles (it never reads what it writes).
template <typename Tile>
int32_t copy_tiles_holding_rows(const Tile* tiles, int32_t ntiles, const int32_t* rows, int32_t nrows, Tile* out) {
  int32_t n = 0;
  for (int32_t t = 0, l = 0; t < ntiles && l < nrows; ++t) {
    const Tile tile = tiles[t];
    while (l < nrows && rows[l] < tile.q_row) ++l;
    if (l < nrows && rows[l] < tile.q_row + tile.q_len) out[n++] = tile;
  }
  return n;
}

}  // namespace tessera
