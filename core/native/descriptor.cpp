#include "descriptor.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "analyze.hpp"
#include "parallel.hpp"
#include "simd.hpp"
#include "stats.hpp"

namespace vislint {

namespace {

constexpr int kSmall = 32;                   // luminance grid of 4x4-pixel boxes
constexpr int kLayout = 8;                   // 8x8 layout cells
constexpr int kCells = 4;                    // 4x4 gradient / colour cells
constexpr int kOrient = 8;                   // orientation bins
constexpr int kCellPx = kSmall / kCells;     // 8 small pixels per gradient cell
constexpr int kColourCellPx = kTileSize / kCells;  // 32 tile pixels per colour cell

// x /= max(|x|, min_norm); a zero vector stays zero. Squares summed in 4 fixed lanes.
void l2_normalise(double* x, int n, double min_norm = 0.0) {
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int l = 0; l < 4; ++l) acc[l] += x[i + l] * x[i + l];
    for (; i < n; ++i) acc[0] += x[i] * x[i];
    const double ss = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    if (ss <= 0.0) return;
    const double inv = 1.0 / std::max(std::sqrt(ss), min_norm);
    for (i = 0; i < n; ++i) x[i] *= inv;
}

// atan(z) * 8 / pi for z in [0, 1] (odd minimax polynomial, |error| < 5e-6 bins,
// exactly 0 at z = 0).
constexpr float kAtan[6] = {-0.029842428863048553f, 0.13406513631343842f,
                            -0.29647740721702576f,  0.49284645915031433f,
                            -0.8470170497894287f,   2.5464210510253906f};
inline float atan_bins(float z) {
    const float z2 = z * z;
    float p = kAtan[0];
    for (int i = 1; i < 6; ++i) p = p * z2 + kAtan[i];
    return p * z;
}

// Block B from the 4x4 box sums of y (any positive scale of the luminance gives the same
// block after its L2 normalisation, so the raw integer differences are used).
//
// Orientation: t = (gradient angle mod pi) in bins of pi/8, from (|gx|, gy); a pixel
// with gx < 0 reads its bin centres in mirrored order (centre of bin b = 7.5 - b instead
// of b + 0.5). Both give the same weights as the angle itself, and a mirrored pixel
// (-gx, gy) gets exactly the mirrored bins. Cells: tent weights around the cell centres,
// columns summed in pairs symmetric about each centre. So the block of a mirrored tile is
// exactly the block of the tile with cells mirrored left-right and bins b <-> 7 - b.
void gradient_block(const std::int32_t (*box)[kSmall], double* B) {
    float H[kCells][kCells][kOrient] = {};
    // E[col + 4][b]: oriented magnitudes of one row; columns -4..35, zero outside 1..30.
    alignas(16) float E[kSmall + 8][kOrient] = {};
    alignas(16) float tv[kSmall], mv[kSmall], negv[kSmall];
    static const float centre[2][kOrient] = {
        {0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f, 7.5f},
        {7.5f, 6.5f, 5.5f, 4.5f, 3.5f, 2.5f, 1.5f, 0.5f}};
    static const float tent[8] = {15 / 16.f, 13 / 16.f, 11 / 16.f, 9 / 16.f,
                                  7 / 16.f,  5 / 16.f,  3 / 16.f,  1 / 16.f};
    for (int r = 1; r < kSmall - 1; ++r) {
        const std::int32_t* up = box[r - 1];
        const std::int32_t* row = box[r];
        const std::int32_t* down = box[r + 1];
        int c = 1;
#if defined(VISLINT_SSE2)
        const __m128 abs_mask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
        const __m128 zero = _mm_setzero_ps(), four = _mm_set1_ps(4.f), eight = _mm_set1_ps(8.f);
        for (; c + 4 <= kSmall - 1; c += 4) {
            const __m128 gx = _mm_cvtepi32_ps(_mm_sub_epi32(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c + 1)),
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c - 1))));
            const __m128 gy = _mm_cvtepi32_ps(_mm_sub_epi32(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(down + c)),
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(up + c))));
            const __m128 ax = _mm_and_ps(gx, abs_mask), ay = _mm_and_ps(gy, abs_mask);
            const __m128 hi = _mm_max_ps(ax, ay), lo = _mm_min_ps(ax, ay);
            const __m128 z = _mm_and_ps(_mm_cmpgt_ps(hi, zero), _mm_div_ps(lo, hi));
            const __m128 z2 = _mm_mul_ps(z, z);
            __m128 p = _mm_set1_ps(kAtan[0]);
            for (int i = 1; i < 6; ++i) p = _mm_add_ps(_mm_mul_ps(p, z2), _mm_set1_ps(kAtan[i]));
            __m128 t = _mm_mul_ps(p, z);
            const __m128 steep = _mm_cmpgt_ps(ay, ax);
            t = _mm_or_ps(_mm_and_ps(steep, _mm_sub_ps(four, t)), _mm_andnot_ps(steep, t));
            const __m128 down_ = _mm_cmplt_ps(gy, zero);
            t = _mm_or_ps(_mm_and_ps(down_, _mm_sub_ps(eight, t)), _mm_andnot_ps(down_, t));
            _mm_storeu_ps(tv + c, t);
            _mm_storeu_ps(mv + c, _mm_sqrt_ps(_mm_add_ps(_mm_mul_ps(gx, gx), _mm_mul_ps(gy, gy))));
            _mm_storeu_ps(negv + c, _mm_and_ps(_mm_cmplt_ps(gx, zero), _mm_set1_ps(1.f)));
        }
#endif
        for (; c < kSmall - 1; ++c) {
            const float gx = static_cast<float>(row[c + 1] - row[c - 1]);
            const float gy = static_cast<float>(down[c] - up[c]);
            const float ax = std::fabs(gx), ay = std::fabs(gy);
            const float hi = ax > ay ? ax : ay, lo = ax < ay ? ax : ay;
            const float z = hi > 0.f ? lo / hi : 0.f;
            float t = atan_bins(z);
            t = ay > ax ? 4.f - t : t;
            t = gy < 0.f ? 8.f - t : t;
            tv[c] = t;
            mv[c] = std::sqrt(gx * gx + gy * gy);
            negv[c] = gx < 0.f ? 1.f : 0.f;
        }
        for (c = 1; c < kSmall - 1; ++c) {
            const float* ctr = centre[negv[c] != 0.f];
#if defined(VISLINT_SSE2)
            const __m128 t = _mm_set1_ps(tv[c]), m = _mm_set1_ps(mv[c]);
            const __m128 one = _mm_set1_ps(1.f), eight = _mm_set1_ps(8.f);
            const __m128 abs_mask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
            for (int h = 0; h < 2; ++h) {
                __m128 d = _mm_and_ps(_mm_sub_ps(t, _mm_loadu_ps(ctr + 4 * h)), abs_mask);
                d = _mm_min_ps(d, _mm_sub_ps(eight, d));
                _mm_store_ps(E[c + 4] + 4 * h,
                             _mm_mul_ps(m, _mm_max_ps(_mm_setzero_ps(), _mm_sub_ps(one, d))));
            }
#else
            for (int b = 0; b < kOrient; ++b) {
                float d = std::fabs(tv[c] - ctr[b]);
                d = d < 8.f - d ? d : 8.f - d;
                const float w = 1.f - d;
                E[c + 4][b] = mv[c] * (0.f > w ? 0.f : w);
            }
#endif
        }
        // Rows: tent weight 1 - |r - 3.5 - 8 cy| / 8 for the (at most two) cells in reach.
        float rowsum[kCells][kOrient];
        for (int cx = 0; cx < kCells; ++cx) {
#if defined(VISLINT_SSE2)
            __m128 acc[2] = {_mm_setzero_ps(), _mm_setzero_ps()};
            for (int k = 0; k < 8; ++k) {
                const float* e0 = E[8 * cx + 7 - k];
                const float* e1 = E[8 * cx + 8 + k];
                const __m128 wk = _mm_set1_ps(tent[k]);
                for (int h = 0; h < 2; ++h)
                    acc[h] = _mm_add_ps(acc[h], _mm_mul_ps(wk, _mm_add_ps(_mm_load_ps(e0 + 4 * h),
                                                                          _mm_load_ps(e1 + 4 * h))));
            }
            _mm_storeu_ps(rowsum[cx], acc[0]);
            _mm_storeu_ps(rowsum[cx] + 4, acc[1]);
#else
            float acc[kOrient] = {};
            for (int k = 0; k < 8; ++k) {
                const float* e0 = E[8 * cx + 7 - k];
                const float* e1 = E[8 * cx + 8 + k];
                for (int b = 0; b < kOrient; ++b) acc[b] += tent[k] * (e0[b] + e1[b]);
            }
            for (int b = 0; b < kOrient; ++b) rowsum[cx][b] = acc[b];
#endif
        }
        for (int cy = 0; cy < kCells; ++cy) {
            const float wy = 1.f - std::fabs(static_cast<float>(r) - 3.5f - 8.f * cy) / 8.f;
            if (wy <= 0.f) continue;
            for (int cx = 0; cx < kCells; ++cx)
                for (int b = 0; b < kOrient; ++b) H[cy][cx][b] += wy * rowsum[cx][b];
        }
    }
    for (int cy = 0; cy < kCells; ++cy)
        for (int cx = 0; cx < kCells; ++cx)
            for (int b = 0; b < kOrient; ++b) B[(cy * kCells + cx) * kOrient + b] = H[cy][cx][b];
}

// The raw vector of the tile (v) and of its mirror (vf, a permutation of v).
void raw_vectors(const TileSums& s, double* v, double* vf) {
    // Luminance statistics from the exact channel sums (same integers as summing y, y^2).
    const std::int64_t s1 = 299 * s.r + 587 * s.g + 114 * s.b;
    const std::int64_t s2 = 299 * 299 * s.rr + 587 * 587 * s.gg + 114 * 114 * s.bb +
                            2 * 299 * 587 * s.rg + 2 * 587 * 114 * s.gb + 2 * 299 * 114 * s.rb;
    const double count = static_cast<double>(kTilePixels);
    const double mean = static_cast<double>(s1) / count;  // 1000 * mean Y
    const double var = std::max(0.0, static_cast<double>(s2) / count - mean * mean);
    const double sd = std::max(std::sqrt(var), 1000.0);  // floor: 1 grey level

    // A: 8x8 box means of the normalised luminance (exact sums).
    constexpr int per = kSmall / kLayout;
    double* A = v;
    for (int i = 0; i < kLayout; ++i)
        for (int j = 0; j < kLayout; ++j) {
            std::int64_t sum = 0;
            for (int a = 0; a < per; ++a)
                for (int b = 0; b < per; ++b) sum += s.box[i * per + a][j * per + b];
            const double px = static_cast<double>(16 * per * per);
            A[i * kLayout + j] = (static_cast<double>(sum) / px - mean) / sd;
        }

    // B: gradient orientation histogram, L2-normalised, clipped at 0.2, re-normalised.
    double* B = v + kLayoutDim;
    gradient_block(s.box, B);

    // C: mean chroma ratios per 32x32 cell.
    double* C = v + kLayoutDim + kGradientDim;
    const double cnt = static_cast<double>(kColourCellPx * kColourCellPx);
    for (int cell = 0; cell < kCells * kCells; ++cell) {
        C[2 * cell] = s.chroma[cell][0] / cnt;
        C[2 * cell + 1] = s.chroma[cell][1] / cnt;
    }

    // The mirrored tile's raw vector: columns of every grid reversed, bins b <-> 7 - b.
    for (int i = 0; i < kLayout; ++i)
        for (int j = 0; j < kLayout; ++j) vf[i * kLayout + j] = A[i * kLayout + kLayout - 1 - j];
    for (int cy = 0; cy < kCells; ++cy)
        for (int cx = 0; cx < kCells; ++cx)
            for (int b = 0; b < kOrient; ++b)
                vf[kLayoutDim + (cy * kCells + cx) * kOrient + b] =
                    B[(cy * kCells + kCells - 1 - cx) * kOrient + kOrient - 1 - b];
    for (int i = 0; i < kCells; ++i)
        for (int j = 0; j < kCells; ++j)
            for (int comp = 0; comp < 2; ++comp)
                vf[kLayoutDim + kGradientDim + (i * kCells + j) * 2 + comp] =
                    C[(i * kCells + kCells - 1 - j) * 2 + comp];

    for (double* x : {v, vf}) {
        double* b = x + kLayoutDim;
        l2_normalise(b, kGradientDim);
        for (int i = 0; i < kGradientDim; ++i) b[i] = std::min(b[i], 0.2);
        l2_normalise(b, kGradientDim);
    }
}

}  // namespace

void check_descriptor_weights(const DescriptorWeights& w) {
    const double ws[3] = {w.layout, w.gradients, w.colour};
    for (double x : ws)
        if (!(x >= 0.0) || !std::isfinite(x))
            throw std::invalid_argument("descriptor weights: expected finite values >= 0, got " +
                                        std::to_string(x));
}

void descriptor_from_sums(const TileSums& s, const DescriptorWeights& w, float* out) {
    double v[kRawDim], vf[kRawDim], d[kDescriptorDim];
    raw_vectors(s, v, vf);
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

void descriptor_raw(const std::uint8_t* tile, bool mirror, double* v) {
    TileSums s;
    tile_pass(tile, kWantDescriptor, s);
    double a[kRawDim], b[kRawDim];
    raw_vectors(s, a, b);
    std::copy(mirror ? b : a, (mirror ? b : a) + kRawDim, v);
}

void descriptor_one(const std::uint8_t* tile, const DescriptorWeights& w, float* out) {
    analyze_tile(tile, w, nullptr, nullptr, out);
}

void descriptor(const std::uint8_t* tiles, std::size_t n, const DescriptorWeights& w,
                float* out, int threads) {
    check_descriptor_weights(w);
    parallel_for(n, threads, [&](std::size_t i) {
        descriptor_one(tiles + i * kTileBytes, w, out + i * kDescriptorDim);
    });
}

}  // namespace vislint
