#include "descriptor.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "parallel.hpp"
#include "stats.hpp"

namespace vislint {

namespace {

constexpr int kSmall = 32;                   // normalised luminance grid
constexpr int kBox = kTileSize / kSmall;     // 4 px per small pixel
constexpr int kLayout = 8;                   // 8x8 layout cells
constexpr int kCells = 4;                    // 4x4 gradient / colour cells
constexpr int kOrient = 8;                   // orientation bins
constexpr int kCellPx = kSmall / kCells;     // 8 small pixels per gradient cell
constexpr int kColourCellPx = kTileSize / kCells;  // 32 tile pixels per colour cell

// x /= max(|x|, min_norm); a zero vector stays zero.
void l2_normalise(double* x, int n, double min_norm = 0.0) {
    double ss = 0.0;
    for (int i = 0; i < n; ++i) ss += x[i] * x[i];
    if (ss <= 0.0) return;
    const double inv = 1.0 / std::max(std::sqrt(ss), min_norm);
    for (int i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace

void descriptor_raw(const std::uint8_t* tile, bool mirror, double* v) {
    auto pixel = [&](int r, int c) {
        const int cc = mirror ? kTileSize - 1 - c : c;
        return tile + 3 * (r * kTileSize + cc);
    };

    // a. Luminance statistics and 4x4 box sums, exact in integers (1000*Y).
    std::int64_t s1 = 0, s2 = 0;
    std::int64_t box[kSmall][kSmall] = {};
    for (int r = 0; r < kTileSize; ++r)
        for (int c = 0; c < kTileSize; ++c) {
            const std::int64_t y = luma1000(pixel(r, c));
            s1 += y;
            s2 += y * y;
            box[r / kBox][c / kBox] += y;
        }
    const double count = static_cast<double>(kTilePixels);
    const double mean = static_cast<double>(s1) / count;  // 1000 * mean Y
    const double var = std::max(0.0, static_cast<double>(s2) / count - mean * mean);
    const double sd = std::max(std::sqrt(var), 1000.0);  // floor: 1 grey level
    double small[kSmall][kSmall];
    for (int i = 0; i < kSmall; ++i)
        for (int j = 0; j < kSmall; ++j)
            small[i][j] = (static_cast<double>(box[i][j]) / (kBox * kBox) - mean) / sd;

    // b. Block A: 8x8 box means of the normalised luminance (exact sums).
    constexpr int per = kSmall / kLayout;  // 4 small pixels per layout cell
    double* A = v;
    for (int i = 0; i < kLayout; ++i)
        for (int j = 0; j < kLayout; ++j) {
            std::int64_t s = 0;
            for (int a = 0; a < per; ++a)
                for (int b = 0; b < per; ++b) s += box[i * per + a][j * per + b];
            const double px = static_cast<double>(kBox * kBox * per * per);
            A[i * kLayout + j] = (static_cast<double>(s) / px - mean) / sd;
        }

    // c. Block B: soft-binned gradient orientation histogram.
    double* B = v + kLayoutDim;
    std::fill(B, B + kGradientDim, 0.0);
    const double pi = std::acos(-1.0);
    const double bin_width = pi / kOrient;
    for (int r = 1; r < kSmall - 1; ++r) {
        const double ty = (r - (kCellPx - 1) / 2.0) / kCellPx;
        const int y0 = static_cast<int>(std::floor(ty));
        const double fy = ty - y0;
        for (int c = 1; c < kSmall - 1; ++c) {
            const double gx = 0.5 * (small[r][c + 1] - small[r][c - 1]);
            const double gy = 0.5 * (small[r + 1][c] - small[r - 1][c]);
            const double m = std::sqrt(gx * gx + gy * gy);
            if (!(m > 0.0)) continue;
            double theta = std::atan2(gy, gx);
            if (theta < 0.0) theta += pi;
            if (theta >= pi) theta -= pi;
            const double to = theta / bin_width - 0.5;
            const int o0 = static_cast<int>(std::floor(to));
            const double fo = to - o0;
            const int ob[2] = {(o0 + kOrient) % kOrient, (o0 + 1 + kOrient) % kOrient};
            const double ow[2] = {1.0 - fo, fo};

            const double tx = (c - (kCellPx - 1) / 2.0) / kCellPx;
            const int x0 = static_cast<int>(std::floor(tx));
            const double fx = tx - x0;
            const int cy[2] = {y0, y0 + 1};
            const double wy[2] = {1.0 - fy, fy};
            const int cx[2] = {x0, x0 + 1};
            const double wx[2] = {1.0 - fx, fx};
            for (int a = 0; a < 2; ++a) {
                if (cy[a] < 0 || cy[a] >= kCells) continue;
                for (int b = 0; b < 2; ++b) {
                    if (cx[b] < 0 || cx[b] >= kCells) continue;
                    const double ws = m * wy[a] * wx[b];
                    double* cell = B + (cy[a] * kCells + cx[b]) * kOrient;
                    cell[ob[0]] += ws * ow[0];
                    cell[ob[1]] += ws * ow[1];
                }
            }
        }
    }
    l2_normalise(B, kGradientDim);
    for (int i = 0; i < kGradientDim; ++i) B[i] = std::min(B[i], 0.2);
    l2_normalise(B, kGradientDim);

    // d. Block C: brightness-invariant chroma ratios per 32x32-px cell.
    double* C = v + kLayoutDim + kGradientDim;
    for (int i = 0; i < kCells; ++i)
        for (int j = 0; j < kCells; ++j) {
            double c1 = 0.0, c2 = 0.0;
            for (int r = i * kColourCellPx; r < (i + 1) * kColourCellPx; ++r)
                for (int c = j * kColourCellPx; c < (j + 1) * kColourCellPx; ++c) {
                    const std::uint8_t* p = pixel(r, c);
                    const int R = p[0], G = p[1], Bl = p[2];
                    const double d = static_cast<double>(R + G + Bl + 3);
                    c1 += (R - G) / d;
                    c2 += (R + G - 2 * Bl) / d;
                }
            const double cnt = static_cast<double>(kColourCellPx * kColourCellPx);
            C[(i * kCells + j) * 2] = c1 / cnt;
            C[(i * kCells + j) * 2 + 1] = c2 / cnt;
        }
}

void descriptor_one(const std::uint8_t* tile, const DescriptorWeights& w, float* out) {
    double v[kRawDim], vf[kRawDim], d[kDescriptorDim];
    descriptor_raw(tile, false, v);
    descriptor_raw(tile, true, vf);
    const int offsets[3] = {0, kLayoutDim, kLayoutDim + kGradientDim};
    const int sizes[3] = {kLayoutDim, kGradientDim, kColourDim};
    const double weights[3] = {w.layout, w.gradients, w.colour};
    const double floors[3] = {0.0, 0.0, kColourNormFloor};
    for (int blk = 0; blk < 3; ++blk) {
        const int n = sizes[blk];
        double* seg = d + 2 * offsets[blk];
        for (int i = 0; i < n; ++i) {
            const double a = v[offsets[blk] + i], b = vf[offsets[blk] + i];
            seg[i] = 0.5 * (a + b);
            seg[n + i] = 0.5 * std::fabs(a - b);
        }
        l2_normalise(seg, 2 * n, floors[blk]);
        for (int i = 0; i < 2 * n; ++i) seg[i] *= weights[blk];
    }
    l2_normalise(d, kDescriptorDim);
    for (int i = 0; i < kDescriptorDim; ++i) out[i] = static_cast<float>(d[i]);
}

void descriptor(const std::uint8_t* tiles, std::size_t n, const DescriptorWeights& w,
                float* out, int threads) {
    const double ws[3] = {w.layout, w.gradients, w.colour};
    for (double x : ws)
        if (!(x >= 0.0) || !std::isfinite(x))
            throw std::invalid_argument("descriptor weights: expected finite values >= 0, got " +
                                        std::to_string(x));
    parallel_for(n, threads, [&](std::size_t i) {
        descriptor_one(tiles + i * kTileBytes, w, out + i * kDescriptorDim);
    });
}

}  // namespace vislint
