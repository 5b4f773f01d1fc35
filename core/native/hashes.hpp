// Perceptual hashes of tiles (DCT pHash, difference hash) and Hamming distance.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vislint {

// 64-bit DCT perceptual hash of one tile.
// Luminance -> 32x32 box means (4x4 pixels) -> 2-D DCT-II -> the 8x8 lowest
// frequencies F[u][v] (u = vertical / row frequency, v = horizontal) ->
// bit u*8+v = F[u][v] > median of the 63 AC coefficients (DC excluded from
// the median but still hashed).
std::uint64_t phash_one(const std::uint8_t* tile);

// 64-bit difference hash of one tile.
// Luminance -> 9 wide x 8 high box means with exact area averaging (pixels
// straddling a column boundary are split by their fractional overlap; rows
// are exactly 16 px) -> bit r*8+c = Y[r][c+1] > Y[r][c].
// Computed exactly in integers, so ties (flat areas) give 0 deterministically.
std::uint64_t dhash_one(const std::uint8_t* tile);

// out[2*i] = pHash, out[2*i+1] = dHash of tile i.
void perceptual_hashes(const std::uint8_t* tiles, std::size_t n, std::uint64_t* out, int threads);

inline int popcount64(std::uint64_t x) {
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return static_cast<int>((x * 0x0101010101010101ULL) >> 56);
}

// out[i] = popcount(a[i] ^ b[i]).
void hamming_distance(const std::uint64_t* a, const std::uint64_t* b, std::size_t m,
                      std::int32_t* out);

}  // namespace vislint
