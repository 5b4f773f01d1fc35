// One pass over a tile's pixels for everything computed from tiles, and the fused
// resize-and-analyse entry point.
//
// tile_pass() reads each pixel once (RGB planes and the luminance of a row are
// computed once) and reduces the tile to TileSums; the finishing steps turn the sums into
// image statistics (stats.cpp) and the descriptor (descriptor.cpp), and the pass itself
// leaves the grey thumbnail that verifies near-duplicate candidates (verify.hpp). The
// public per-feature functions (image_stats, grey_thumbnail, descriptor) and
// analyze_images all go through tile_pass, so their results are identical bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>

#include "descriptor.hpp"
#include "stats.hpp"
#include "verify.hpp"

namespace vislint {

// Which outputs a pass must prepare (bit flags).
enum : unsigned { kWantStats = 1u, kWantThumb = 2u, kWantDescriptor = 4u, kWantAll = 7u };

// The reductions of one tile. Luminance is y = 1000 Y = 299 R + 587 G + 114 B (exact).
struct TileSums {
    // kWantDescriptor
    std::int32_t box[32][32];   // sums of y over 4x4-pixel boxes
    // kWantThumb | kWantStats: means of Y over 2x2-pixel boxes, rounded half up
    // (grey_thumbnail; the statistics' detail shares are computed from it)
    std::uint8_t thumb[kVerifyBytes];
    // kWantStats | kWantDescriptor: sums of R, G, B and of their products over the tile
    std::int64_t r, g, b, rr, gg, bb, rg, gb, rb;
    // kWantStats
    std::int32_t hist[256];     // counts of round(Y), half up
    std::int64_t lap_sum;       // sum of the 4-neighbour Laplacian of y over the interior
    double lap_sq;              // sum of its squares
    std::int64_t diff_sum;      // sum of max(R, G, B) - min(R, G, B)
    // kWantDescriptor: per 32x32-pixel cell (row-major 4x4), sums of
    // (R - G) / (R + G + B + 3) and (R + G - 2B) / (R + G + B + 3), summed in an order that
    // is symmetric under a left-right mirror (so a mirrored tile gives the mirrored sums
    // exactly).
    double chroma[16][2];
};

void tile_pass(const std::uint8_t* tile, unsigned want, TileSums& s);  // stats.cpp

// Finishing steps (each reads only the fields its flag asks tile_pass for).
void stats_from_sums(const TileSums& s, float* out);                   // stats.cpp
void descriptor_from_sums(const TileSums& s, const DescriptorWeights& w,
                          float* out);                                  // descriptor.cpp

// tile_pass + the finishing steps whose output pointer is not null.
void analyze_tile(const std::uint8_t* tile, const DescriptorWeights& w, float* stats,
                  std::uint8_t* thumb, float* descriptor);

// One decoded image: h rows x w columns x `channels` bytes (3: RGB; 4: RGBX, the 4th
// byte ignored), rows contiguous.
struct ImageRef {
    const std::uint8_t* pixels;
    int h, w;
    int channels;
};

// For each image: resize to a kTileSize tile (resize_rgb) into tiles[i], then analyze_tile.
// tiles: n * kTileBytes; stats: n * kNumStats; thumbs: n * kVerifyBytes;
// descriptors: n * kDescriptorDim.
void analyze_images(const ImageRef* images, std::size_t n, const DescriptorWeights& w,
                    std::uint8_t* tiles, float* stats, std::uint8_t* thumbs,
                    float* descriptors, int threads);

}  // namespace vislint
