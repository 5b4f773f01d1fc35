#include "rotation.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel.hpp"
// GCC 12 warns that the (empty) scalar tail loops of simd.hpp would overflow when it
// inlines them with the constant tile size, a multiple of 16: a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Waggressive-loop-optimizations"
#endif
#include "simd.hpp"
#include "stats.hpp"

namespace vislint {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kT = kTileSize;
constexpr int kD = kDiskSize;
constexpr int kRays = 64;
constexpr int kRaySteps = 96;
constexpr int kBoxAngles = 90;          // box orientations 0..89 degrees
constexpr int kBoxBlock = 8;            // boundary points per early-exit test of a box
constexpr int kRowSlots = 8;            // tile rows kept as floats for the disk resampling
constexpr double kEdgeBias = 0.75;      // tile px between the content edge and the first bright sample
constexpr double kMinRadius = 0.3;      // R never below this fraction of the canvas inradius
constexpr double kPolarExtent = 0.9;    // polar grid radius / disk radius
constexpr double kSigma = 1.5;          // band-pass Gaussian, disk px
constexpr int kPad = 5;                 // its radius, ceil(3 sigma)
constexpr int kPooledRings = kPolarRings / 2;
constexpr int kRetrievalTerms = 8;      // angular Fourier terms 1..8 in the retrieval vector
constexpr double kChromaWeight = 0.5;
constexpr int kVerifyTerms = 48;        // angular Fourier terms 0..48 in the verification
constexpr int kVerifyAngles = 256;

// max(R, G, B) of the RGB pixel at p, as a float.
inline float channel_max(const std::uint8_t* p) {
    return static_cast<float>(std::max(std::max(p[0], p[1]), p[2]));
}

// Bilinear sample of the tile's max(R, G, B) at (x, y) in tile px, pixel centres at
// i + 0.5, clamped to the tile (only the four pixels used are read: most rays stop at
// their first sample).
inline double sample_max(const std::uint8_t* tile, double x, double y) {
    const double xf = std::clamp(x - 0.5, 0.0, kT - 1.0001);
    const double yf = std::clamp(y - 0.5, 0.0, kT - 1.0001);
    const int x0 = static_cast<int>(xf), y0 = static_cast<int>(yf);
    const double ax = xf - x0, ay = yf - y0;
    const std::uint8_t* r0 = tile + 3 * (static_cast<std::size_t>(y0) * kT + x0);
    const std::uint8_t* r1 = r0 + 3 * kT;
    return (channel_max(r0) * (1 - ax) + channel_max(r0 + 3) * ax) * (1 - ay) +
           (channel_max(r1) * (1 - ax) + channel_max(r1 + 3) * ax) * ay;
}

#if !defined(VISLINT_SSE2)
// out[0..3] = sum over taps t < n of w[t] * base[off[t] + 0..3], summed in tap order: the
// plain form of the SSE2 loops below (one multiply-add of 4 floats per tap, same floats).
inline void mac4(const float* base, const int* off, const float* w, int n, float* out) {
    out[0] = out[1] = out[2] = out[3] = 0;
    for (int t = 0; t < n; ++t)
        for (int c = 0; c < 4; ++c) out[c] += w[t] * base[off[t] + c];
}
#endif

// Working memory of one rotation_features call, kept per thread (no allocation, and no
// page faults from fresh large blocks, per image).
struct Scratch {
    std::vector<float> ftile = std::vector<float>(kRowSlots * kT * 3);
    // + 1: a 4-float load at the last RGB pixel stays inside
    std::vector<float> rows = std::vector<float>(kD * kT * 3 + 1);
    std::vector<float> planes = std::vector<float>(4 * kD * kD);  // Y, band-pass, Cb, Cr
    std::vector<float> chans = std::vector<float>(4 * kD * kD);  // per pixel: Y, band-pass, Cb, Cr
    std::vector<float> tmp = std::vector<float>(kD * kD);
    std::vector<float> pol = std::vector<float>(4 * kPolarCells);
    std::vector<double> pooled = std::vector<double>(kPolarCells / 2);
};

Scratch& scratch() {
    thread_local Scratch s;
    return s;
}

// cos and sin of the ray directions and of the box orientations of content_radius.
struct RadiusTrig {
    double ray_cos[kRays], ray_sin[kRays];
    double box_cos[kBoxAngles], box_sin[kBoxAngles];
    RadiusTrig() {
        for (int i = 0; i < kRays; ++i) {
            const double phi = (i + 0.5) * 2 * kPi / kRays;
            ray_cos[i] = std::cos(phi);
            ray_sin[i] = std::sin(phi);
        }
        for (int deg = 0; deg < kBoxAngles; ++deg) {
            box_cos[deg] = std::cos(deg * kPi / 180);
            box_sin[deg] = std::sin(deg * kPi / 180);
        }
    }
};

const RadiusTrig& radius_trig() {
    static const RadiusTrig table;
    return table;
}

// Half-extents (a, b) of the box at orientation (ct, st) around the points (px, py):
// a = max |px ct + py st|, b = max |-px st + py ct| (max is exact in any order). Blocks of
// kBoxBlock points; false as soon as the partial a * b reaches `best` (the extents only
// grow, so the box cannot be smaller than the best one), then a and b are partial.
bool box_extent(const double* px, const double* py, double ct, double st, double best, double& a,
                double& b) {
    static_assert(kRays % kBoxBlock == 0 && kBoxBlock % 2 == 0, "whole blocks of pairs");
#if defined(VISLINT_SSE2)
    const __m128d sign = _mm_set1_pd(-0.0), c = _mm_set1_pd(ct), s = _mm_set1_pd(st);
    __m128d ma = _mm_setzero_pd(), mb = _mm_setzero_pd();
    for (int i0 = 0; i0 < kRays; i0 += kBoxBlock) {
        for (int i = i0; i < i0 + kBoxBlock; i += 2) {
            const __m128d x = _mm_loadu_pd(px + i), y = _mm_loadu_pd(py + i);
            // -x st + y ct == y ct - x st exactly (IEEE addition commutes)
            ma = _mm_max_pd(ma, _mm_andnot_pd(sign, _mm_add_pd(_mm_mul_pd(x, c), _mm_mul_pd(y, s))));
            mb = _mm_max_pd(mb, _mm_andnot_pd(sign, _mm_sub_pd(_mm_mul_pd(y, c), _mm_mul_pd(x, s))));
        }
        a = std::max(_mm_cvtsd_f64(ma), _mm_cvtsd_f64(_mm_unpackhi_pd(ma, ma)));
        b = std::max(_mm_cvtsd_f64(mb), _mm_cvtsd_f64(_mm_unpackhi_pd(mb, mb)));
        if (a * b >= best) return false;
    }
#else
    a = b = 0;
    for (int i0 = 0; i0 < kRays; i0 += kBoxBlock) {
        for (int i = i0; i < i0 + kBoxBlock; ++i) {
            a = std::max(a, std::abs(px[i] * ct + py[i] * st));
            b = std::max(b, std::abs(-px[i] * st + py[i] * ct));
        }
        if (a * b >= best) return false;
    }
#endif
    return true;
}

// Content radius in image px (see the header), from the tile's max(R, G, B).
double content_radius(const std::uint8_t* tile, double w, double h) {
    const RadiusTrig& rt = radius_trig();
    const double rcanvas = std::min(w, h) / 2;
    // The boundary points, ray i at position (i % kBoxBlock) * (kRays / kBoxBlock) +
    // i / kBoxBlock: each block spans the circle (box extents near their final values early).
    alignas(16) double px[kRays], py[kRays];
    for (int i = 0; i < kRays; ++i) {
        const double c = rt.ray_cos[i], s = rt.ray_sin[i];
        const double inf = std::numeric_limits<double>::infinity();
        const double tedge = std::min(std::abs(c) > 1e-9 ? w / 2 / std::abs(c) : inf,
                                      std::abs(s) > 1e-9 ? h / 2 / std::abs(s) : inf);
        double tb = tedge;
        for (int k = 0; k < kRaySteps; ++k) {
            const double t = tedge * (1 - (k + 0.5) / kRaySteps);
            const double v = sample_max(tile, kT / 2.0 + t * c * kT / w, kT / 2.0 + t * s * kT / h);
            if (v > kDarkLevel) {
                if (k > 0) {
                    const double step = std::hypot(c * kT / w, s * kT / h);  // tile px per px
                    tb = std::max(t - kEdgeBias / step, 0.0);
                }
                break;
            }
        }
        const int pos = (i % kBoxBlock) * (kRays / kBoxBlock) + i / kBoxBlock;
        px[pos] = tb * c;
        py[pos] = tb * s;
    }
    double best = std::numeric_limits<double>::infinity(), radius = rcanvas;
    for (int deg = 0; deg < kBoxAngles; ++deg) {
        double a = 0, b = 0;
        if (box_extent(px, py, rt.box_cos[deg], rt.box_sin[deg], best, a, b) && a * b < best) {
            best = a * b;
            radius = std::min(a, b);
        }
    }
    return std::clamp(radius, kMinRadius * rcanvas, rcanvas);
}

// The band-pass Gaussian (sigma kSigma, radius kPad), normalised to sum 1.
struct GaussKernel {
    float k[2 * kPad + 1];
    GaussKernel() {
        double ksum = 0;
        for (int i = -kPad; i <= kPad; ++i) ksum += std::exp(-0.5 * (i / kSigma) * (i / kSigma));
        for (int i = -kPad; i <= kPad; ++i)
            k[i + kPad] = static_cast<float>(std::exp(-0.5 * (i / kSigma) * (i / kSigma)) / ksum);
    }
};

const GaussKernel& gauss_kernel() {
    static const GaussKernel table;
    return table;
}

// Resampling weights from kD output samples (2x supersampled) to kT tile samples along
// one axis: output o = sum of w[o][j] * in[idx[o][j]], 4 taps.
struct Taps {
    int idx[kD][4];
    float w[kD][4];
};

Taps disk_taps(double tile_px_per_unit) {
    Taps t{};
    for (int o = 0; o < kD; ++o) {
        for (int k = 0; k < 2; ++k) {
            const double u = ((2 * o + k) + 0.5) / (2 * kD) * 2 - 1;
            const double f = std::clamp(kT / 2.0 + u * tile_px_per_unit - 0.5, 0.0, kT - 1.0001);
            const int i0 = static_cast<int>(f);
            const double a = f - i0;
            t.idx[o][2 * k] = i0;
            t.w[o][2 * k] = static_cast<float>(0.5 * (1 - a));
            t.idx[o][2 * k + 1] = i0 + 1;
            t.w[o][2 * k + 1] = static_cast<float>(0.5 * a);
        }
    }
    return t;
}

// The polar sampling as a fixed table: per cell, 2x2 samples x 4 bilinear taps into the
// kD x kD disk image, with taps on the same pixel merged (cell c uses taps
// [start[c], start[c + 1])).
struct PolarTable {
    std::vector<int> start, off;  // off: 4 x pixel index, the tap's floats in the 4-channel image
    std::vector<float> w;
    PolarTable() {
        start.push_back(0);
        for (int r = 0; r < kPolarRings; ++r) {
            for (int a = 0; a < kPolarAngles; ++a) {
                std::vector<std::pair<int, double>> taps;
                for (int sr = 0; sr < 2; ++sr) {
                    for (int sa = 0; sa < 2; ++sa) {
                        const double rho = (2 * r + sr + 0.5) / (2 * kPolarRings) * kPolarExtent * kD / 2;
                        const double phi = (2 * a + sa + 0.5) / (2 * kPolarAngles) * 2 * kPi;
                        const double x = std::clamp(kD / 2.0 + rho * std::cos(phi) - 0.5, 0.0, kD - 1.0001);
                        const double y = std::clamp(kD / 2.0 + rho * std::sin(phi) - 0.5, 0.0, kD - 1.0001);
                        const int x0 = static_cast<int>(x), y0 = static_cast<int>(y);
                        const double ax = x - x0, ay = y - y0;
                        const int base = y0 * kD + x0;
                        taps.emplace_back(base, (1 - ax) * (1 - ay) / 4);
                        taps.emplace_back(base + 1, ax * (1 - ay) / 4);
                        taps.emplace_back(base + kD, (1 - ax) * ay / 4);
                        taps.emplace_back(base + kD + 1, ax * ay / 4);
                    }
                }
                std::sort(taps.begin(), taps.end());
                for (std::size_t i = 0; i < taps.size(); ++i) {
                    if (i > 0 && taps[i].first == taps[i - 1].first) {
                        w.back() += static_cast<float>(taps[i].second);
                    } else {
                        off.push_back(4 * taps[i].first);
                        w.push_back(static_cast<float>(taps[i].second));
                    }
                }
                start.push_back(static_cast<int>(off.size()));
            }
        }
    }
};

const PolarTable& polar_table() {
    static const PolarTable table;
    return table;
}

// cos and sin of 2 pi m a / 128 for the angular transforms, m = 0..Terms, a = 0..32 (the
// folded sums of angular_dft); rows padded to an even length (whole SIMD pairs of
// doubles; the padding is 0).
template <int Terms>
struct DftTable {
    static constexpr int kStride = (Terms + 2) / 2 * 2;
    static constexpr int kRows = kPolarAngles / 4 + 1;
    alignas(16) double cos[kRows][kStride] = {};
    alignas(16) double sin[kRows][kStride] = {};
    DftTable() {
        for (int m = 0; m <= Terms; ++m)
            for (int a = 0; a < kRows; ++a) {
                cos[a][m] = std::cos(2 * kPi * ((m * a) % kPolarAngles) / kPolarAngles);
                sin[a][m] = std::sin(2 * kPi * ((m * a) % kPolarAngles) / kPolarAngles);
            }
    }
};

template <int Terms>
const DftTable<Terms>& dft_table() {
    static const DftTable<Terms> table;
    return table;
}

// cos and sin of 2 pi m t / 256 for the correlation over rotation angles t.
struct Trig {
    double rot_cos[kVerifyAngles][kVerifyTerms + 1], rot_sin[kVerifyAngles][kVerifyTerms + 1];
    Trig() {
        for (int t = 0; t < kVerifyAngles; ++t)
            for (int m = 0; m <= kVerifyTerms; ++m) {
                rot_cos[t][m] = std::cos(2 * kPi * ((m * t) % kVerifyAngles) / kVerifyAngles);
                rot_sin[t][m] = std::sin(2 * kPi * ((m * t) % kVerifyAngles) / kVerifyAngles);
            }
    }
};

const Trig& trig() {
    static const Trig table;
    return table;
}

// polar = round(grid * 127 / max |grid|), clamped to [-127, 127] (all 0 for a zero grid).
void quantise(const float* grid, std::int8_t* polar) {
    static_assert(kPolarCells % 16 == 0, "whole SIMD blocks");
#if defined(VISLINT_SSE2)
    // max is exact in any order; cvtps rounds to nearest even like nearbyint in the
    // default rounding mode; the values fit int8, so the saturating packs are exact.
    const __m128 sign = _mm_set1_ps(-0.0f);
    __m128 m = _mm_setzero_ps();
    for (int i = 0; i < kPolarCells; i += 4) m = _mm_max_ps(m, _mm_andnot_ps(sign, _mm_loadu_ps(grid + i)));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ps(m, _mm_shuffle_ps(m, m, 1));
    const float peak = _mm_cvtss_f32(m);
    const __m128 scale = _mm_set1_ps(peak > 0 ? 127.0f / peak : 0.0f);
    const __m128 lo = _mm_set1_ps(-127.0f), hi = _mm_set1_ps(127.0f);
    auto q = [&](int i) {
        return _mm_cvtps_epi32(_mm_min_ps(_mm_max_ps(_mm_mul_ps(_mm_loadu_ps(grid + i), scale), lo), hi));
    };
    for (int i = 0; i < kPolarCells; i += 16) {
        const __m128i a = _mm_packs_epi32(q(i), q(i + 4)), b = _mm_packs_epi32(q(i + 8), q(i + 12));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(polar + i), _mm_packs_epi16(a, b));
    }
#else
    float peak = 0;
    for (int i = 0; i < kPolarCells; ++i) peak = std::max(peak, std::abs(grid[i]));
    const float scale = peak > 0 ? 127.0f / peak : 0.0f;
    for (int i = 0; i < kPolarCells; ++i)
        polar[i] = static_cast<std::int8_t>(std::nearbyint(std::clamp(grid[i] * scale, -127.0f, 127.0f)));
#endif
}

// In place: subtract the ring-weighted mean, scale to unit weighted energy, and multiply
// each ring by sqrt(weight), weight ~ radius (ring r of `rings` has weight r + 0.5).
// (Per-ring sums in angle order, the rings side by side: independent sums.)
void normalise_polar(double* grid, int rings) {
    const double wsum = rings * rings / 2.0;  // sum of (r + 0.5)
    double s[kPolarRings] = {};
    for (int a = 0; a < kPolarAngles; ++a)
        for (int r = 0; r < rings; ++r) s[r] += grid[r * kPolarAngles + a];
    double mean = 0;
    for (int r = 0; r < rings; ++r) mean += s[r] * (r + 0.5) / wsum;
    mean /= kPolarAngles;
    for (int r = 0; r < rings; ++r) s[r] = 0;
    for (int a = 0; a < kPolarAngles; ++a)
        for (int r = 0; r < rings; ++r) {
            double& v = grid[r * kPolarAngles + a];
            v -= mean;
            s[r] += v * v;
        }
    double energy = 0;
    for (int r = 0; r < rings; ++r) energy += s[r] * (r + 0.5) / wsum;
    const double e = std::sqrt(energy / kPolarAngles) + 1e-6;
    for (int r = 0; r < rings; ++r) {
        const double f = std::sqrt((r + 0.5) / wsum) / e;
        for (int a = 0; a < kPolarAngles; ++a) grid[r * kPolarAngles + a] *= f;
    }
}

// F[m] = sum_a x[a] e^{-2 pi i m a / 128} for m = 0..Terms (x real), folded by the
// symmetries of cos and sin: with c = cos(2 pi m a / 128), s = sin(...), N = 128,
//   a <-> N - a:   c same, s negated    (e[a] = x[a] + x[N-a], o[a] = x[a] - x[N-a]),
//   a <-> N/2 - a: c times (-1)^m, s times -(-1)^m,
// so F[m] = x[0] + (-1)^m x[N/2] + e[N/4] c(N/4) + sum_{a < N/4} (e[a] +- e[N/2-a]) c(a)
//         - i (o[N/4] s(N/4) + sum_{a < N/4} (o[a] -+ o[N/2-a]) s(a)), signs by the parity
// of m: a quarter of the multiply-adds of the plain sum. The terms side by side
// (independent sums, not one long dependency chain).
template <int Terms>
void angular_dft(const double* x, std::complex<double>* out) {
    using Table = DftTable<Terms>;
    static_assert(Table::kStride % 2 == 0, "terms in (even, odd) pairs");
    const Table& tr = dft_table<Terms>();
    constexpr int kN = kPolarAngles, kHalf = kN / 2, kQuarter = kN / 4;
    auto e = [&](int a) { return x[a] + x[kN - a]; };
    auto o = [&](int a) { return x[a] - x[kN - a]; };
    alignas(16) double re[Table::kStride], im[Table::kStride];
    for (int m = 0; m < Table::kStride; ++m) {
        re[m] = (x[0] + (m % 2 ? -x[kHalf] : x[kHalf])) + e(kQuarter) * tr.cos[kQuarter][m];
        im[m] = -(o(kQuarter) * tr.sin[kQuarter][m]);
    }
    for (int a = 1; a < kQuarter; ++a) {
        const double ea = e(a), eb = e(kHalf - a), oa = o(a), ob = o(kHalf - a);
        const double ev[2] = {ea + eb, ea - eb};  // for even, odd m
        const double ov[2] = {oa - ob, oa + ob};
        const double* c = tr.cos[a];
        const double* s = tr.sin[a];
        for (int m = 0; m < Table::kStride; ++m) {
            re[m] += ev[m % 2] * c[m];
            im[m] -= ov[m % 2] * s[m];
        }
    }
    for (int m = 0; m <= Terms; ++m) out[m] = {re[m], im[m]};
}

// Standard deviation of a polar grid v[0..kPolarCells); in double, four interleaved
// partial sums (independent dependency chains).
double population_std(const float* v) {
    constexpr int n = kPolarCells;
    static_assert(n % 4 == 0, "whole groups of 4");
    double s[4] = {}, ss[4] = {};
    for (int i = 0; i < n; i += 4)
        for (int j = 0; j < 4; ++j) s[j] += v[i + j];
    const double mean = ((s[0] + s[1]) + (s[2] + s[3])) / n;
    for (int i = 0; i < n; i += 4)
        for (int j = 0; j < 4; ++j) ss[j] += (v[i + j] - mean) * (v[i + j] - mean);
    return std::sqrt(((ss[0] + ss[1]) + (ss[2] + ss[3])) / n);
}

using Spectrum = std::array<std::complex<double>, kPolarRings*(kVerifyTerms + 1)>;

// Verification spectrum of one quantised band-pass grid: normalised (self-correlation 1).
void verify_spectrum(const std::int8_t* q, Spectrum& F) {
    std::vector<double> grid(q, q + kPolarCells);
    normalise_polar(grid.data(), kPolarRings);
    double energy = 0;
    for (int r = 0; r < kPolarRings; ++r) {
        std::complex<double>* f = &F[r * (kVerifyTerms + 1)];
        angular_dft<kVerifyTerms>(&grid[r * kPolarAngles], f);
        for (int m = 0; m <= kVerifyTerms; ++m) {
            f[m] /= kPolarAngles;
            energy += (m ? 2 : 1) * std::norm(f[m]);
        }
    }
    const double scale = 1 / std::sqrt(energy + 1e-12);
    for (auto& z : F) z *= scale;
}

}  // namespace

void rotation_features(const std::uint8_t* tile, int width, int height, float* retrieval,
                       std::int8_t* polar, float* info) {
    constexpr int kRow = kT * 3;  // floats (or bytes) per interleaved RGB tile row
    const double w = std::max(width, 1), h = std::max(height, 1);
    Scratch& sc = scratch();
#if defined(VISLINT_SSE2)
    // The whole tile is read below; the rays' scattered first reads would otherwise wait
    // for memory one cache line at a time.
    for (std::size_t i = 0; i < kTileBytes; i += 64)
        _mm_prefetch(reinterpret_cast<const char*>(tile) + i, _MM_HINT_T0);
#endif
    const double radius = content_radius(tile, w, h);

    // Disk image: the vertical pass over whole interleaved rows (contiguous, vectorised),
    // then the horizontal pass; luminance Y and the chroma differences.
    const Taps tx = disk_taps(radius * kT / w), ty = disk_taps(radius * kT / h);
    // Only the floats [k0, k1) of a row are used: the horizontal taps' pixels (4-float
    // loads from the first channel of each).
    const int k0 = 3 * tx.idx[0][0], k1 = std::min(kRow, 3 * tx.idx[kD - 1][3] + 4);
    // Tile rows as floats, converted when first used, in a ring of kRowSlots rows (the rows
    // of an output lie within 3 consecutive tile rows, in increasing order: the sample step
    // is radius / kD <= 1 tile px).
    float* ring = sc.ftile.data();
    int slot_row[kRowSlots];
    std::fill_n(slot_row, kRowSlots, -1);
    auto tile_row = [&](int r) {
        float* dst = ring + static_cast<std::size_t>(r % kRowSlots) * kRow;
        if (slot_row[r % kRowSlots] != r) {
            bytes_to_floats(tile + static_cast<std::size_t>(r) * kRow + k0, k1 - k0, dst + k0);
            slot_row[r % kRowSlots] = r;
        }
        return dst;
    };
    float* rows = sc.rows.data();
    for (int o = 0; o < kD; ++o) {
        float* dst = &rows[static_cast<std::size_t>(o) * kRow];
        const float* s0 = tile_row(ty.idx[o][0]);
        const float* s1 = tile_row(ty.idx[o][1]);
        const float* s2 = tile_row(ty.idx[o][2]);
        const float* s3 = tile_row(ty.idx[o][3]);
        const float w0 = ty.w[o][0], w1 = ty.w[o][1], w2 = ty.w[o][2], w3 = ty.w[o][3];
        for (int k = k0; k < k1; ++k) dst[k] = ((w0 * s0[k] + w1 * s1[k]) + w2 * s2[k]) + w3 * s3[k];
    }
    // Planes Y, B (band-pass), Cb, Cr of the disk image.
    constexpr int kN = kD * kD;
    float* Y = sc.planes.data();
    float* B = Y + kN;
    float* Cb = B + kN;
    float* Cr = Cb + kN;
    // The horizontal taps as float offsets into a row (and, for SSE2, the weights repeated
    // 4 times: SIMD operands).
    int hoff[kD][4];
    for (int x = 0; x < kD; ++x)
        for (int t = 0; t < 4; ++t) hoff[x][t] = 3 * tx.idx[x][t];
#if defined(VISLINT_SSE2)
    alignas(16) float hw[kD][4][4];
    for (int x = 0; x < kD; ++x)
        for (int t = 0; t < 4; ++t) std::fill_n(hw[x][t], 4, tx.w[x][t]);
#endif
    for (int y = 0; y < kD; ++y) {
        const float* src = &rows[static_cast<std::size_t>(y) * kRow];
        const int row = y * kD;
#if defined(VISLINT_SSE2)
        // Four pixels at a time: their (R, G, B, -) vectors transposed into R, G, B lanes.
        static_assert(kD % 4 == 0, "whole groups of pixels");
        auto pixel = [&](int x) {  // mac4 of the pixel's 4 taps
            __m128 acc = _mm_setzero_ps();
            for (int t = 0; t < 4; ++t)
                acc = _mm_add_ps(acc, _mm_mul_ps(_mm_load_ps(hw[x][t]), _mm_loadu_ps(src + hoff[x][t])));
            return acc;
        };
        for (int x = 0; x < kD; x += 4) {
            __m128 r = pixel(x), g = pixel(x + 1), b = pixel(x + 2), unused = pixel(x + 3);
            _MM_TRANSPOSE4_PS(r, g, b, unused);
            const __m128 lum = _mm_add_ps(
                _mm_add_ps(_mm_mul_ps(_mm_set1_ps(0.299f), r), _mm_mul_ps(_mm_set1_ps(0.587f), g)),
                _mm_mul_ps(_mm_set1_ps(0.114f), b));
            _mm_storeu_ps(Y + row + x, lum);
            _mm_storeu_ps(Cb + row + x, _mm_sub_ps(b, lum));
            _mm_storeu_ps(Cr + row + x, _mm_sub_ps(r, lum));
        }
#else
        for (int x = 0; x < kD; ++x) {
            float rgb[4];  // the 4th lane is a neighbour's value, never used
            mac4(src, hoff[x], tx.w[x], 4, rgb);
            Y[row + x] = 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2];
            Cb[row + x] = rgb[2] - Y[row + x];
            Cr[row + x] = rgb[0] - Y[row + x];
        }
#endif
    }
    // Band-pass B = Y - Gauss(Y): separable (vertical, then horizontal), with the image
    // extended by reflection. Then the four channels interleaved per pixel for the polar
    // sampling: chans[4 * pixel + (Y, B, Cb, Cr)] (with SSE2 as each B is computed).
    float* chans = sc.chans.data();
    {
        const float* k = gauss_kernel().k;
        auto reflect = [](int i) { return i < 0 ? -i : (i >= kD ? 2 * kD - 2 - i : i); };
        float* tmp = sc.tmp.data();
        float line[kD + 2 * kPad];
#if defined(VISLINT_SSE2)
        // Each group of 4 outputs summed in a register over the 11 taps, in tap order.
        __m128 kv[2 * kPad + 1];
        for (int i = 0; i <= 2 * kPad; ++i) kv[i] = _mm_set1_ps(k[i]);
#endif
        for (int y = 0; y < kD; ++y) {
            const float* src[2 * kPad + 1];
            for (int i = 0; i <= 2 * kPad; ++i) src[i] = &Y[reflect(y + i - kPad) * kD];
            float* dst = &tmp[y * kD];
#if defined(VISLINT_SSE2)
            for (int x = 0; x < kD; x += 4) {
                __m128 acc = _mm_setzero_ps();
                for (int i = 0; i <= 2 * kPad; ++i)
                    acc = _mm_add_ps(acc, _mm_mul_ps(kv[i], _mm_loadu_ps(src[i] + x)));
                _mm_storeu_ps(dst + x, acc);
            }
#else
            for (int x = 0; x < kD; ++x) dst[x] = 0;
            for (int i = 0; i <= 2 * kPad; ++i)
                for (int x = 0; x < kD; ++x) dst[x] += k[i] * src[i][x];
#endif
        }
        for (int y = 0; y < kD; ++y) {
            const float* row = &tmp[y * kD];
            std::copy_n(row, kD, line + kPad);
            for (int x = 1; x <= kPad; ++x) {
                line[kPad - x] = row[x];
                line[kPad + kD - 1 + x] = row[kD - 1 - x];
            }
#if defined(VISLINT_SSE2)
            for (int x = 0; x < kD; x += 4) {
                __m128 acc = _mm_setzero_ps();
                for (int i = 0; i <= 2 * kPad; ++i)
                    acc = _mm_add_ps(acc, _mm_mul_ps(kv[i], _mm_loadu_ps(line + x + i)));
                const int i = y * kD + x;
                __m128 py = _mm_loadu_ps(Y + i), pb = _mm_sub_ps(py, acc);
                __m128 pcb = _mm_loadu_ps(Cb + i), pcr = _mm_loadu_ps(Cr + i);
                _MM_TRANSPOSE4_PS(py, pb, pcb, pcr);
                _mm_storeu_ps(chans + 4 * i, py);
                _mm_storeu_ps(chans + 4 * i + 4, pb);
                _mm_storeu_ps(chans + 4 * i + 8, pcb);
                _mm_storeu_ps(chans + 4 * i + 12, pcr);
            }
#else
            float blurred[kD] = {};
            for (int i = 0; i <= 2 * kPad; ++i)
                for (int x = 0; x < kD; ++x) blurred[x] += k[i] * line[x + i];
            for (int x = 0; x < kD; ++x) B[y * kD + x] = Y[y * kD + x] - blurred[x];
#endif
        }
    }
#if !defined(VISLINT_SSE2)
    for (int i = 0; i < kN; ++i)
        for (int c = 0; c < 4; ++c) chans[4 * i + c] = Y[i + c * kN];
#endif
    // Polar grids of the four channels: pol[ch * kPolarCells + cell].
    const PolarTable& pt = polar_table();
    float* pol = sc.pol.data();
#if defined(VISLINT_SSE2)
    // Four cells at a time, their (Y, B, Cb, Cr) vectors transposed into the four grids.
    static_assert(kPolarCells % 4 == 0, "whole groups of cells");
    auto cell_sum = [&](int cell) {
        __m128 acc = _mm_setzero_ps();
        for (int t = pt.start[cell]; t < pt.start[cell + 1]; ++t)
            acc = _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(pt.w[t]), _mm_loadu_ps(chans + pt.off[t])));
        return acc;
    };
    for (int cell = 0; cell < kPolarCells; cell += 4) {
        __m128 a0 = cell_sum(cell), a1 = cell_sum(cell + 1), a2 = cell_sum(cell + 2), a3 = cell_sum(cell + 3);
        _MM_TRANSPOSE4_PS(a0, a1, a2, a3);
        _mm_storeu_ps(pol + cell, a0);
        _mm_storeu_ps(pol + kPolarCells + cell, a1);
        _mm_storeu_ps(pol + 2 * kPolarCells + cell, a2);
        _mm_storeu_ps(pol + 3 * kPolarCells + cell, a3);
    }
#else
    for (int cell = 0; cell < kPolarCells; ++cell) {
        float acc[4];
        const int t0 = pt.start[cell];
        mac4(chans, &pt.off[t0], &pt.w[t0], pt.start[cell + 1] - t0, acc);
        for (int c = 0; c < 4; ++c) pol[c * kPolarCells + cell] = acc[c];
    }
#endif

    // Retrieval vector: Y and B (ring means, |Fourier terms 1..8| on pooled rings), chroma.
    float* v = retrieval;
    double* pooled = sc.pooled.data();
    std::complex<double> F[kRetrievalTerms + 1];
    for (int ch = 0; ch < 2; ++ch) {
        const float* g = pol + ch * kPolarCells;
        for (int r = 0; r < kPooledRings; ++r)
            for (int a = 0; a < kPolarAngles; ++a)
                pooled[r * kPolarAngles + a] =
                    (static_cast<double>(g[(2 * r) * kPolarAngles + a]) + g[(2 * r + 1) * kPolarAngles + a]) / 2;
        normalise_polar(pooled, kPooledRings);
        const double norm = 1 / std::sqrt(static_cast<double>(kPolarAngles));
        float* means = v;
        float* mags = v + kPooledRings;
        for (int r = 0; r < kPooledRings; ++r) {
            angular_dft<kRetrievalTerms>(&pooled[r * kPolarAngles], F);
            means[r] = static_cast<float>(F[0].real() * norm);
            for (int m = 1; m <= kRetrievalTerms; ++m)
                mags[r * kRetrievalTerms + m - 1] = static_cast<float>(std::sqrt(std::norm(F[m])) * norm);
        }
        v += kPooledRings * (kRetrievalTerms + 1);
    }
    const double ysd = population_std(pol) + 1.0;
    for (int ch = 2; ch < 4; ++ch) {
        const float* g = pol + ch * kPolarCells;
        double s[kPooledRings] = {};  // pooled ring sums, each in angle order
        for (int a = 0; a < 2 * kPolarAngles; ++a)
            for (int r = 0; r < kPooledRings; ++r) s[r] += g[2 * r * kPolarAngles + a];
        for (int r = 0; r < kPooledRings; ++r)
            *v++ = static_cast<float>(kChromaWeight * s[r] / (2 * kPolarAngles) / ysd);
    }

    // Verification input: the band-pass grid, quantised.
    const float* bp = pol + kPolarCells;
    quantise(bp, polar);
    info[0] = static_cast<float>(radius / (std::min(w, h) / 2));
    info[1] = static_cast<float>(population_std(bp));
}

void rotation_features_batch(const std::uint8_t* tiles, const std::int32_t* widths,
                             const std::int32_t* heights, std::size_t n, float* retrieval,
                             std::int8_t* polar, float* info, int threads) {
    polar_table();  // the tables are built once, before the workers start
    radius_trig();
    gauss_kernel();
    dft_table<kRetrievalTerms>();
    parallel_for(n, threads, [&](std::size_t i) {
        rotation_features(tiles + i * kTileBytes, widths[i], heights[i],
                          retrieval + i * kRotationDim, polar + i * kPolarCells,
                          info + i * kRotationInfo);
    });
}

void rotation_verify(const std::int8_t* polar, std::size_t n, const std::int64_t* a,
                     const std::int64_t* b, std::size_t pairs, float* score, float* angle,
                     std::uint8_t* mirrored, int threads) {
    for (std::size_t p = 0; p < pairs; ++p) {
        if (a[p] < 0 || b[p] < 0 || static_cast<std::size_t>(std::max(a[p], b[p])) >= n)
            throw std::invalid_argument("pairs: row index out of range [0, " + std::to_string(n) + ")");
    }
    const Trig& tr = trig();
    dft_table<kVerifyTerms>();
    std::vector<std::int64_t> rows(a, a + pairs);
    rows.insert(rows.end(), b, b + pairs);
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    std::vector<Spectrum> spectra(rows.size());
    parallel_for(rows.size(), threads, [&](std::size_t i) {
        verify_spectrum(polar + static_cast<std::size_t>(rows[i]) * kPolarCells, spectra[i]);
    });
    auto find = [&](std::int64_t r) {
        return static_cast<std::size_t>(std::lower_bound(rows.begin(), rows.end(), r) - rows.begin());
    };
    parallel_for(pairs, threads, [&](std::size_t p) {
        const Spectrum& fa = spectra[find(a[p])];
        const Spectrum& fb = spectra[find(b[p])];
        // Cross-spectra summed over rings: X for b as is, Z for b mirrored (conjugate).
        std::complex<double> X[kVerifyTerms + 1], Z[kVerifyTerms + 1];
        for (int m = 0; m <= kVerifyTerms; ++m) X[m] = Z[m] = 0;
        for (int r = 0; r < kPolarRings; ++r)
            for (int m = 0; m <= kVerifyTerms; ++m) {
                const auto& za = fa[r * (kVerifyTerms + 1) + m];
                const auto& zb = fb[r * (kVerifyTerms + 1) + m];
                X[m] += za * std::conj(zb);
                Z[m] += za * zb;
            }
        double best = -std::numeric_limits<double>::infinity();
        int best_t = 0;
        bool best_mirror = false;
        for (int mirror = 0; mirror < 2; ++mirror) {
            const std::complex<double>* S = mirror ? Z : X;
            double re[kVerifyTerms + 1], im[kVerifyTerms + 1];
            for (int m = 0; m <= kVerifyTerms; ++m) {
                re[m] = m ? 2 * S[m].real() : S[m].real();
                im[m] = m ? 2 * S[m].imag() : 0.0;
            }
            for (int t = 0; t < kVerifyAngles; ++t) {
                double c = 0;
                for (int m = 0; m <= kVerifyTerms; ++m)
                    c += re[m] * tr.rot_cos[t][m] - im[m] * tr.rot_sin[t][m];
                if (c > best) {
                    best = c;
                    best_t = t;
                    best_mirror = mirror;
                }
            }
        }
        score[p] = static_cast<float>(best);
        angle[p] = static_cast<float>(best_t * 360.0 / kVerifyAngles);
        mirrored[p] = best_mirror;
    });
}

}  // namespace vislint
