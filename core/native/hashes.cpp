#include "hashes.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "analyze.hpp"
#include "parallel.hpp"
#include "stats.hpp"

namespace vislint {

namespace {

constexpr int kDct = 32;        // pHash works on 32x32 box means
constexpr int kLow = 8;         // and keeps the 8x8 lowest frequencies
constexpr int kBox = kTileSize / kDct;  // 4

// cos(pi * (2x + 1) * u / (2 * 32)) for u < 8, x < 32 (unnormalised DCT-II).
const std::array<double, kLow * kDct>& dct_table() {
    static const std::array<double, kLow * kDct> table = [] {
        std::array<double, kLow * kDct> t{};
        const double pi = std::acos(-1.0);
        for (int u = 0; u < kLow; ++u)
            for (int x = 0; x < kDct; ++x)
                t[u * kDct + x] = std::cos(pi * (2 * x + 1) * u / (2.0 * kDct));
        return t;
    }();
    return table;
}

constexpr int kDW = 9;  // dHash grid: 9 columns
constexpr int kDH = 8;  //             8 rows of 16 px

// 9 * (overlap of pixel column [x, x+1) with dHash column [c*128/9, (c+1)*128/9)),
// an integer: |[9x, 9x+9) n [128c, 128c+128)|.
const std::array<int, kDW * kTileSize>& dhash_weights() {
    static const std::array<int, kDW * kTileSize> table = [] {
        std::array<int, kDW * kTileSize> w{};
        for (int c = 0; c < kDW; ++c)
            for (int x = 0; x < kTileSize; ++x) {
                const int lo = std::max(9 * x, kTileSize * c);
                const int hi = std::min(9 * x + 9, kTileSize * (c + 1));
                w[c * kTileSize + x] = std::max(0, hi - lo);
            }
        return w;
    }();
    return table;
}

// pHash from the 4x4 box sums of y: box means (exact sums / 16000), then the separable
// DCT, rows first (horizontal frequency v) then columns (u); every coefficient is summed
// in index order, the 8 frequencies of a row side by side. (The same arithmetic as
// before, so even exact ties, e.g. in flat synthetic tiles, break the same way.)
std::uint64_t phash_from_boxes(const std::int32_t (*box)[kDct]) {
    const auto& C = dct_table();
    double Ct[kDct][kLow];  // Ct[y][v] = C[v][y]
    for (int v = 0; v < kLow; ++v)
        for (int y = 0; y < kDct; ++y) Ct[y][v] = C[v * kDct + y];
    double t[kDct][kLow];
    for (int x = 0; x < kDct; ++x) {
        double acc[kLow] = {};
        for (int y = 0; y < kDct; ++y) {
            const double f = static_cast<double>(box[x][y]) / (1000.0 * kBox * kBox);
            for (int v = 0; v < kLow; ++v) acc[v] += f * Ct[y][v];
        }
        for (int v = 0; v < kLow; ++v) t[x][v] = acc[v];
    }
    double coef[kLow * kLow];
    for (int u = 0; u < kLow; ++u) {
        double acc[kLow] = {};
        for (int x = 0; x < kDct; ++x) {
            const double c = C[u * kDct + x];
            for (int v = 0; v < kLow; ++v) acc[v] += c * t[x][v];
        }
        for (int v = 0; v < kLow; ++v) coef[u * kLow + v] = acc[v];
    }
    double ac[kLow * kLow - 1];
    std::copy(coef + 1, coef + kLow * kLow, ac);
    constexpr int mid = (kLow * kLow - 1) / 2;  // 63 values -> index 31
    std::nth_element(ac, ac + mid, ac + kLow * kLow - 1);
    const double median = ac[mid];
    std::uint64_t h = 0;
    for (int i = 0; i < kLow * kLow; ++i)
        if (coef[i] > median) h |= (std::uint64_t{1} << i);
    return h;
}

// dHash from the 16-row column sums of y. Every cell has the same area (16 * 128/9 px),
// so comparing the weighted sums (weights scaled by 9) compares the means exactly.
std::uint64_t dhash_from_bands(const std::int32_t (*band)[kTileSize]) {
    const auto& W = dhash_weights();
    std::uint64_t h = 0;
    for (int r = 0; r < kDH; ++r) {
        std::int64_t cell[kDW];
        for (int c = 0; c < kDW; ++c) {
            // Only the columns overlapping the cell: [floor(128 c / 9), ceil(128 (c+1) / 9)).
            const int x0 = kTileSize * c / kDW;
            const int x1 = (kTileSize * (c + 1) + kDW - 1) / kDW;
            std::int64_t s = 0;
            for (int x = x0; x < x1; ++x)
                s += static_cast<std::int64_t>(W[c * kTileSize + x]) * band[r][x];
            cell[c] = s;
        }
        for (int c = 0; c < kDW - 1; ++c)
            if (cell[c + 1] > cell[c]) h |= (std::uint64_t{1} << (r * 8 + c));
    }
    return h;
}

}  // namespace

void hashes_from_sums(const TileSums& s, std::uint64_t* out) {
    out[0] = phash_from_boxes(s.box);
    out[1] = dhash_from_bands(s.band);
}

std::uint64_t phash_one(const std::uint8_t* tile) {
    TileSums s;
    tile_pass(tile, kWantHashes, s);
    return phash_from_boxes(s.box);
}

std::uint64_t dhash_one(const std::uint8_t* tile) {
    TileSums s;
    tile_pass(tile, kWantHashes, s);
    return dhash_from_bands(s.band);
}

void perceptual_hashes(const std::uint8_t* tiles, std::size_t n, std::uint64_t* out, int threads) {
    parallel_for(n, threads, [&](std::size_t i) {
        analyze_tile(tiles + i * kTileBytes, DescriptorWeights{}, nullptr, out + 2 * i, nullptr);
    });
}

void hamming_distance(const std::uint64_t* a, const std::uint64_t* b, std::size_t m,
                      std::int32_t* out) {
    for (std::size_t i = 0; i < m; ++i) out[i] = popcount64(a[i] ^ b[i]);
}

}  // namespace vislint
