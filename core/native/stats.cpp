#include "stats.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "parallel.hpp"

namespace vislint {

const std::vector<std::string>& stat_names() {
    static const std::vector<std::string> names = {
        "blur_laplacian_var", "lum_mean", "lum_std", "lum_p01",
        "lum_p05",            "lum_p50",  "lum_p95", "lum_p99",
        "entropy",            "colourfulness", "channel_diff",
    };
    return names;
}

static_assert(kNumStats == 11, "update stat_names() together with kNumStats");

namespace {

// Population mean and variance (two passes, double).
template <class Get>
void mean_var(std::size_t count, Get get, double& mean, double& var) {
    double s = 0.0;
    for (std::size_t i = 0; i < count; ++i) s += get(i);
    mean = s / static_cast<double>(count);
    double ss = 0.0;
    for (std::size_t i = 0; i < count; ++i) {
        const double d = get(i) - mean;
        ss += d * d;
    }
    var = ss / static_cast<double>(count);
}

}  // namespace

void image_stats_one(const std::uint8_t* tile, float* out) {
    constexpr int S = kTileSize;
    constexpr std::size_t P = kTilePixels;
    std::vector<int> y(P);
    for (std::size_t p = 0; p < P; ++p) y[p] = luma1000(tile + 3 * p);

    // Laplacian over the interior, computed exactly on 1000*Y.
    std::vector<int> lap;
    lap.reserve(static_cast<std::size_t>(S - 2) * (S - 2));
    for (int r = 1; r < S - 1; ++r) {
        const int* row = y.data() + r * S;
        for (int c = 1; c < S - 1; ++c) {
            lap.push_back(row[c - S] + row[c + S] + row[c - 1] + row[c + 1] - 4 * row[c]);
        }
    }
    double lap_mean, lap_var;
    mean_var(lap.size(), [&](std::size_t i) { return lap[i] / 1000.0; }, lap_mean, lap_var);

    double lum_mean, lum_var;
    mean_var(P, [&](std::size_t i) { return y[i] / 1000.0; }, lum_mean, lum_var);

    // Histogram of round(Y), half rounded up (exact on 1000*Y).
    std::int64_t hist[256] = {0};
    for (std::size_t p = 0; p < P; ++p) hist[(y[p] + 500) / 1000]++;
    const double percentiles[5] = {0.01, 0.05, 0.50, 0.95, 0.99};
    float pct_values[5];
    for (int k = 0; k < 5; ++k) {
        const double need = percentiles[k] * static_cast<double>(P);
        std::int64_t cum = 0;
        int v = 255;
        for (int b = 0; b < 256; ++b) {
            cum += hist[b];
            if (static_cast<double>(cum) >= need) {
                v = b;
                break;
            }
        }
        pct_values[k] = static_cast<float>(v);
    }
    double entropy = 0.0;
    for (int b = 0; b < 256; ++b) {
        if (hist[b] == 0) continue;
        const double q = static_cast<double>(hist[b]) / static_cast<double>(P);
        entropy -= q * std::log2(q);
    }

    // Hasler & Suesstrunk colourfulness and the channel spread.
    double rg_mean, rg_var, yb_mean, yb_var;
    mean_var(P, [&](std::size_t i) {
        const std::uint8_t* px = tile + 3 * i;
        return static_cast<double>(px[0]) - px[1];
    }, rg_mean, rg_var);
    mean_var(P, [&](std::size_t i) {
        const std::uint8_t* px = tile + 3 * i;
        return 0.5 * (static_cast<double>(px[0]) + px[1]) - px[2];
    }, yb_mean, yb_var);
    const double colourfulness = std::sqrt(rg_var + yb_var) +
                                 0.3 * std::sqrt(rg_mean * rg_mean + yb_mean * yb_mean);

    std::int64_t diff_sum = 0;
    for (std::size_t p = 0; p < P; ++p) {
        const int r = tile[3 * p], g = tile[3 * p + 1], b = tile[3 * p + 2];
        diff_sum += std::max({std::abs(r - g), std::abs(g - b), std::abs(r - b)});
    }
    const double channel_diff = static_cast<double>(diff_sum) / static_cast<double>(P);

    out[0] = static_cast<float>(lap_var);
    out[1] = static_cast<float>(lum_mean);
    out[2] = static_cast<float>(std::sqrt(lum_var));
    for (int k = 0; k < 5; ++k) out[3 + k] = pct_values[k];
    out[8] = static_cast<float>(entropy);
    out[9] = static_cast<float>(colourfulness);
    out[10] = static_cast<float>(channel_diff);
}

void image_stats(const std::uint8_t* tiles, std::size_t n, float* out, int threads) {
    const std::size_t cols = kNumStats;
    parallel_for(n, threads, [&](std::size_t i) {
        image_stats_one(tiles + i * kTileBytes, out + i * cols);
    });
}

}  // namespace vislint
