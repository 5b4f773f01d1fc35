#include "hashes.hpp"

#include <algorithm>
#include <array>
#include <cmath>

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

}  // namespace

std::uint64_t phash_one(const std::uint8_t* tile) {
    // 32x32 box means of Y (exact integer sums of 1000*Y, then scaled).
    double f[kDct][kDct];
    for (int br = 0; br < kDct; ++br)
        for (int bc = 0; bc < kDct; ++bc) {
            std::int64_t s = 0;
            for (int r = br * kBox; r < (br + 1) * kBox; ++r)
                for (int c = bc * kBox; c < (bc + 1) * kBox; ++c)
                    s += luma1000(tile + 3 * (r * kTileSize + c));
            f[br][bc] = static_cast<double>(s) / (1000.0 * kBox * kBox);
        }
    const auto& C = dct_table();
    // Separable DCT: rows first (horizontal frequency v), then columns (u).
    double t[kDct][kLow];
    for (int x = 0; x < kDct; ++x)
        for (int v = 0; v < kLow; ++v) {
            double s = 0.0;
            for (int y = 0; y < kDct; ++y) s += f[x][y] * C[v * kDct + y];
            t[x][v] = s;
        }
    double coef[kLow * kLow];
    for (int u = 0; u < kLow; ++u)
        for (int v = 0; v < kLow; ++v) {
            double s = 0.0;
            for (int x = 0; x < kDct; ++x) s += C[u * kDct + x] * t[x][v];
            coef[u * kLow + v] = s;
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

std::uint64_t dhash_one(const std::uint8_t* tile) {
    const auto& W = dhash_weights();
    constexpr int band = kTileSize / kDH;  // 16 rows per dHash row
    std::uint64_t h = 0;
    for (int r = 0; r < kDH; ++r) {
        // Column sums of 1000*Y over the 16-row band.
        std::int64_t colsum[kTileSize] = {0};
        for (int y = r * band; y < (r + 1) * band; ++y)
            for (int x = 0; x < kTileSize; ++x) colsum[x] += luma1000(tile + 3 * (y * kTileSize + x));
        // Every cell has the same area (16 * 128/9 px), so comparing the
        // weighted sums (weights scaled by 9) compares the means exactly.
        std::int64_t cell[kDW];
        for (int c = 0; c < kDW; ++c) {
            std::int64_t s = 0;
            for (int x = 0; x < kTileSize; ++x) s += W[c * kTileSize + x] * colsum[x];
            cell[c] = s;
        }
        for (int c = 0; c < kDW - 1; ++c)
            if (cell[c + 1] > cell[c]) h |= (std::uint64_t{1} << (r * 8 + c));
    }
    return h;
}

void perceptual_hashes(const std::uint8_t* tiles, std::size_t n, std::uint64_t* out, int threads) {
    parallel_for(n, threads, [&](std::size_t i) {
        const std::uint8_t* tile = tiles + i * kTileBytes;
        out[2 * i] = phash_one(tile);
        out[2 * i + 1] = dhash_one(tile);
    });
}

void hamming_distance(const std::uint64_t* a, const std::uint64_t* b, std::size_t m,
                      std::int32_t* out) {
    for (std::size_t i = 0; i < m; ++i) out[i] = popcount64(a[i] ^ b[i]);
}

}  // namespace vislint
