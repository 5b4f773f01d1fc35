// Per-tile image statistics (blur, exposure, contrast, entropy, colour).
//
// Also home of the tile geometry and the integer luminance shared by the
// other algorithm files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vislint {

// Every tile is uint8[kTileSize][kTileSize][3], RGB, row-major, C order.
inline constexpr int kTileSize = 128;
inline constexpr int kTilePixels = kTileSize * kTileSize;
inline constexpr std::size_t kTileBytes = static_cast<std::size_t>(kTilePixels) * 3;

// Luminance times 1000, exact in integers:
// 1000 * Y = 299 R + 587 G + 114 B, i.e. Y = 0.299 R + 0.587 G + 0.114 B in 0..255.
inline int luma1000(const std::uint8_t* px) {
    return 299 * px[0] + 587 * px[1] + 114 * px[2];
}

// Column names of image_stats, in order.
const std::vector<std::string>& stat_names();
inline constexpr int kNumStats = 16;

// tiles: n tiles of kTileBytes each; out: n * kNumStats floats (row-major).
// Computed by the shared tile pass (analyze.hpp): exact integer sums for the moments,
// histogram and Laplacian sum; the Laplacian's squares in float lanes per row.
void image_stats(const std::uint8_t* tiles, std::size_t n, float* out, int threads);

// One tile (exposed for tests / reuse).
void image_stats_one(const std::uint8_t* tile, float* out);

}  // namespace vislint
