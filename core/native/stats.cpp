#include "stats.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "analyze.hpp"
#include "parallel.hpp"
#include "resize.hpp"
#include "simd.hpp"

namespace vislint {

const std::vector<std::string>& stat_names() {
    static const std::vector<std::string> names = {
        "blur_laplacian_var", "lum_mean", "lum_std", "lum_p01",
        "lum_p05",            "lum_p50",  "lum_p95", "lum_p99",
        "entropy",            "colourfulness", "channel_diff",
        "detail_2",           "detail_4", "detail_8", "detail_16", "detail_coarse",
    };
    return names;
}

static_assert(kNumStats == 16, "update stat_names() together with kNumStats");

namespace {

constexpr int S = kTileSize;
static_assert(S == 128, "the tile pass is written for 128-pixel tiles");

// h * log2(h) for every possible bin count h of a tile histogram.
const std::vector<double>& xlog2x() {
    static const std::vector<double> table = [] {
        std::vector<double> t(kTilePixels + 1, 0.0);
        for (int h = 2; h <= kTilePixels; ++h) t[h] = h * std::log2(static_cast<double>(h));
        return t;
    }();
    return table;
}

// Channel sums of a tile: R, G, B, their products and max - min (exact integers).
struct Moments {
#if defined(VISLINT_SSE2)
    // psadbw sums (2 x u64) and pmaddwd sums (4 x i32: at most 2048 * 2 * 255^2 < 2^31).
    __m128i r = _mm_setzero_si128(), g = r, b = r, diff = r;
    __m128i rr = r, gg = r, bb = r, rg = r, gb = r, rb = r;
#else
    std::int64_t r = 0, g = 0, b = 0, diff = 0, rr = 0, gg = 0, bb = 0, rg = 0, gb = 0, rb = 0;
#endif
};

#if defined(VISLINT_SSE2)
inline std::int64_t hsum64(__m128i v) {
    alignas(16) std::uint64_t t[2];
    _mm_store_si128(reinterpret_cast<__m128i*>(t), v);
    return static_cast<std::int64_t>(t[0] + t[1]);
}
inline std::int64_t hsum32(__m128i v) {
    alignas(16) std::int32_t t[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(t), v);
    return static_cast<std::int64_t>(t[0]) + t[1] + t[2] + t[3];
}
#endif

// What a row of the tile contributes, from its planes R, G, B:
// - moments (if mom);
// - y[c] = 299 R + 587 G + 114 B as float (exact), added to col4 (if luma);
// - idx[c] = round(Y) half up (if hist): floor(y * 0.001f + 0.5005f), which is within 5e-5
//   of (y + 500.5) / 1000 whose fraction lies in [0.0005, 0.9995] (checked for every y);
// - f1[c] = (R - G) * q, f2[c] = (R + G - 2B) * q with q = 1 / (R + G + B + 3) (if chroma).
// The SSE2 and the plain paths perform the same float operations.
void row_pass(const std::uint8_t* __restrict R, const std::uint8_t* __restrict G,
              const std::uint8_t* __restrict B, bool mom, bool luma, bool hist, bool chroma,
              Moments& m, float* __restrict y, float* __restrict col4, std::uint8_t* __restrict idx,
              float* __restrict f1, float* __restrict f2) {
#if defined(VISLINT_SSE2)
    const __m128i zero = _mm_setzero_si128();
    const __m128i c_rg = _mm_set_epi16(587, 299, 587, 299, 587, 299, 587, 299);
    const __m128i c_b = _mm_set_epi16(0, 114, 0, 114, 0, 114, 0, 114);
    const __m128i three = _mm_set1_epi16(3);
    const __m128 milli = _mm_set1_ps(0.001f), half = _mm_set1_ps(0.5005f), one = _mm_set1_ps(1.0f);
    for (int c = 0; c < S; c += 16) {
        const __m128i r8 = _mm_load_si128(reinterpret_cast<const __m128i*>(R + c));
        const __m128i g8 = _mm_load_si128(reinterpret_cast<const __m128i*>(G + c));
        const __m128i b8 = _mm_load_si128(reinterpret_cast<const __m128i*>(B + c));
        const __m128i r16[2] = {_mm_unpacklo_epi8(r8, zero), _mm_unpackhi_epi8(r8, zero)};
        const __m128i g16[2] = {_mm_unpacklo_epi8(g8, zero), _mm_unpackhi_epi8(g8, zero)};
        const __m128i b16[2] = {_mm_unpacklo_epi8(b8, zero), _mm_unpackhi_epi8(b8, zero)};
        if (mom) {
            const __m128i hi = _mm_max_epu8(_mm_max_epu8(r8, g8), b8);
            const __m128i lo = _mm_min_epu8(_mm_min_epu8(r8, g8), b8);
            m.diff = _mm_add_epi64(m.diff, _mm_sad_epu8(_mm_sub_epi8(hi, lo), zero));
            m.r = _mm_add_epi64(m.r, _mm_sad_epu8(r8, zero));
            m.g = _mm_add_epi64(m.g, _mm_sad_epu8(g8, zero));
            m.b = _mm_add_epi64(m.b, _mm_sad_epu8(b8, zero));
            for (int h = 0; h < 2; ++h) {
                m.rr = _mm_add_epi32(m.rr, _mm_madd_epi16(r16[h], r16[h]));
                m.gg = _mm_add_epi32(m.gg, _mm_madd_epi16(g16[h], g16[h]));
                m.bb = _mm_add_epi32(m.bb, _mm_madd_epi16(b16[h], b16[h]));
                m.rg = _mm_add_epi32(m.rg, _mm_madd_epi16(r16[h], g16[h]));
                m.gb = _mm_add_epi32(m.gb, _mm_madd_epi16(g16[h], b16[h]));
                m.rb = _mm_add_epi32(m.rb, _mm_madd_epi16(r16[h], b16[h]));
            }
        }
        if (luma) {
            __m128i iq[4];
            for (int h = 0; h < 2; ++h) {
                const __m128i rg_lo = _mm_unpacklo_epi16(r16[h], g16[h]);
                const __m128i rg_hi = _mm_unpackhi_epi16(r16[h], g16[h]);
                const __m128i b_lo = _mm_unpacklo_epi16(b16[h], zero);
                const __m128i b_hi = _mm_unpackhi_epi16(b16[h], zero);
                const __m128i yi[2] = {
                    _mm_add_epi32(_mm_madd_epi16(rg_lo, c_rg), _mm_madd_epi16(b_lo, c_b)),
                    _mm_add_epi32(_mm_madd_epi16(rg_hi, c_rg), _mm_madd_epi16(b_hi, c_b))};
                for (int q = 0; q < 2; ++q) {
                    const int at = c + 8 * h + 4 * q;
                    const __m128 yf = _mm_cvtepi32_ps(yi[q]);
                    _mm_store_ps(y + at, yf);
                    _mm_store_ps(col4 + at, _mm_add_ps(_mm_load_ps(col4 + at), yf));
                    iq[2 * h + q] = _mm_cvttps_epi32(_mm_add_ps(_mm_mul_ps(yf, milli), half));
                }
            }
            if (hist)
                _mm_store_si128(reinterpret_cast<__m128i*>(idx + c),
                                _mm_packus_epi16(_mm_packs_epi32(iq[0], iq[1]),
                                                 _mm_packs_epi32(iq[2], iq[3])));
        }
        if (chroma) {
            for (int h = 0; h < 2; ++h) {
                const __m128i rg = _mm_add_epi16(r16[h], g16[h]);
                const __m128i sum = _mm_add_epi16(_mm_add_epi16(rg, b16[h]), three);
                const __m128i d1 = _mm_sub_epi16(r16[h], g16[h]);
                const __m128i d2 = _mm_sub_epi16(_mm_sub_epi16(rg, b16[h]), b16[h]);
                for (int q = 0; q < 2; ++q) {
                    const int at = c + 8 * h + 4 * q;
                    const __m128i s32 = q ? _mm_unpackhi_epi16(sum, zero) : _mm_unpacklo_epi16(sum, zero);
                    const __m128i a32 = _mm_srai_epi32(q ? _mm_unpackhi_epi16(d1, d1) : _mm_unpacklo_epi16(d1, d1), 16);
                    const __m128i t32 = _mm_srai_epi32(q ? _mm_unpackhi_epi16(d2, d2) : _mm_unpacklo_epi16(d2, d2), 16);
                    const __m128 inv = _mm_div_ps(one, _mm_cvtepi32_ps(s32));
                    _mm_store_ps(f1 + at, _mm_mul_ps(_mm_cvtepi32_ps(a32), inv));
                    _mm_store_ps(f2 + at, _mm_mul_ps(_mm_cvtepi32_ps(t32), inv));
                }
            }
        }
    }
#else
    for (int c = 0; c < S; ++c) {
        const int r = R[c], g = G[c], b = B[c];
        if (mom) {
            m.r += r, m.g += g, m.b += b;
            m.rr += r * r, m.gg += g * g, m.bb += b * b, m.rg += r * g, m.gb += g * b, m.rb += r * b;
            m.diff += std::max(std::max(r, g), b) - std::min(std::min(r, g), b);
        }
        if (luma) {
            const float yf = static_cast<float>(299 * r + 587 * g + 114 * b);
            y[c] = yf;
            col4[c] += yf;
            if (hist) idx[c] = static_cast<std::uint8_t>(static_cast<int>(yf * 0.001f + 0.5005f));
        }
        if (chroma) {
            const float inv = 1.0f / static_cast<float>(r + g + b + 3);
            f1[c] = static_cast<float>(r - g) * inv;
            f2[c] = static_cast<float>(r + g - 2 * b) * inv;
        }
    }
#endif
}

void finish_moments(const Moments& m, TileSums& s) {
#if defined(VISLINT_SSE2)
    s.r = hsum64(m.r), s.g = hsum64(m.g), s.b = hsum64(m.b), s.diff_sum = hsum64(m.diff);
    s.rr = hsum32(m.rr), s.gg = hsum32(m.gg), s.bb = hsum32(m.bb);
    s.rg = hsum32(m.rg), s.gb = hsum32(m.gb), s.rb = hsum32(m.rb);
#else
    s.r = m.r, s.g = m.g, s.b = m.b, s.diff_sum = m.diff;
    s.rr = m.rr, s.gg = m.gg, s.bb = m.bb, s.rg = m.rg, s.gb = m.gb, s.rb = m.rb;
#endif
}

// Sum of squares of the 4-neighbour Laplacian of the middle row y1 (columns 1..126, exact
// integers in float), in 8 lanes: lane l gets the columns 1 + l, 9 + l, ...; the row total
// is ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
float laplacian_sq(const float* __restrict y0, const float* __restrict y1,
                   const float* __restrict y2) {
    int c = 1;
#if defined(VISLINT_SSE2)
    const __m128 four = _mm_set1_ps(4.f);
    __m128 acc[2] = {_mm_setzero_ps(), _mm_setzero_ps()};
    for (; c + 8 <= S - 1; c += 8)
        for (int h = 0; h < 2; ++h) {
            const int at = c + 4 * h;
            const __m128 v = _mm_sub_ps(
                _mm_add_ps(_mm_add_ps(_mm_loadu_ps(y0 + at), _mm_loadu_ps(y2 + at)),
                           _mm_add_ps(_mm_loadu_ps(y1 + at - 1), _mm_loadu_ps(y1 + at + 1))),
                _mm_mul_ps(four, _mm_loadu_ps(y1 + at)));
            acc[h] = _mm_add_ps(acc[h], _mm_mul_ps(v, v));
        }
    alignas(16) float lane[8];
    _mm_store_ps(lane, acc[0]);
    _mm_store_ps(lane + 4, acc[1]);
#else
    float lane[8] = {};
    for (; c + 8 <= S - 1; c += 8)
        for (int l = 0; l < 8; ++l) {
            const float v = ((y0[c + l] + y2[c + l]) + (y1[c + l - 1] + y1[c + l + 1])) - 4.f * y1[c + l];
            lane[l] += v * v;
        }
#endif
    for (int l = 0; c < S - 1; ++c, ++l) {
        const float v = ((y0[c] + y2[c]) + (y1[c - 1] + y1[c + 1])) - 4.f * y1[c];
        lane[l] += v * v;
    }
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

}  // namespace

void tile_pass(const std::uint8_t* tile, unsigned want, TileSums& s) {
    const bool stats = (want & kWantStats) != 0;
    const bool boxes = (want & kWantDescriptor) != 0;
    const bool thumb = (want & (kWantThumb | kWantStats)) != 0;  // the detail shares read it
    const bool moments = (want & (kWantStats | kWantDescriptor)) != 0;
    const bool colour = (want & kWantDescriptor) != 0;
    const bool luma = stats || boxes || thumb;

    alignas(16) std::uint8_t R[S], G[S], B[S], idx[S];
    alignas(16) float y[3][S];          // luminance (1000 Y, exact) of the last three rows
    alignas(16) float col4[S] = {};     // column sums of y over the current 4-row strip
    alignas(16) float pairs[S / 2] = {};  // sums of y over 2x2 boxes of the current 2 rows
    alignas(16) float f1[S], f2[S];     // per-pixel chroma ratios of the current row
    alignas(16) float cacc[4][2][16] = {};  // chroma pair sums of the current 32-row band
    alignas(16) std::int32_t hist4[4][256] = {};
    Moments mom;
    double lap_sq = 0.0, lap_border = 0.0;

    for (int r = 0; r < S; ++r) {
        deinterleave_rgb(tile + static_cast<std::size_t>(r) * 3 * S, S, R, G, B);
        float* yr = y[r % 3];
        row_pass(R, G, B, moments, luma, stats, colour, mom, yr, col4, idx, f1, f2);

        if (stats) {
            for (int c = 0; c < S; c += 16)
                for (int k = 0; k < 16; k += 4) {  // 4 histograms: no store-to-load chains
                    ++hist4[0][idx[c + k]];
                    ++hist4[1][idx[c + k + 1]];
                    ++hist4[2][idx[c + k + 2]];
                    ++hist4[3][idx[c + k + 3]];
                }
            // Sum of the Laplacian over the interior, by telescoping: only border terms.
            if (r >= 1 && r <= S - 2) lap_border += (yr[0] - yr[1]) + (yr[S - 1] - yr[S - 2]);
            if (r == 0 || r == 1 || r == S - 2 || r == S - 1) {
                double t = 0.0;
                for (int c = 1; c < S - 1; ++c) t += yr[c];
                lap_border += (r == 0 || r == S - 1) ? t : -t;
            }
            if (r >= 2) lap_sq += laplacian_sq(y[(r - 2) % 3], y[(r - 1) % 3], yr);
        }

        if (boxes && r % 4 == 3) {
            std::int32_t* box = s.box[r / 4];
            for (int bc = 0; bc < 32; ++bc)
                box[bc] = static_cast<std::int32_t>((col4[4 * bc] + col4[4 * bc + 1]) +
                                                    (col4[4 * bc + 2] + col4[4 * bc + 3]));
            for (int c = 0; c < S; ++c) col4[c] = 0.f;
        }

        if (thumb) {  // exact: four values of y (integers up to 255,000) sum exactly in float
            for (int c = 0; c < S / 2; ++c) pairs[c] += yr[2 * c] + yr[2 * c + 1];
            if (r % 2 == 1) {
                std::uint8_t* out = s.thumb + (r / 2) * (S / 2);
                for (int c = 0; c < S / 2; ++c) {
                    out[c] = static_cast<std::uint8_t>((static_cast<int>(pairs[c]) + 2000) / 4000);
                    pairs[c] = 0.f;
                }
            }
        }

        if (colour) {
            // Pixel k of a 32-pixel cell is paired with pixel 31 - k (its mirror image in
            // the mirrored cell), so the sums do not depend on the reading direction.
            for (int j = 0; j < 4; ++j)
                for (int k = 0; k < 16; ++k) {
                    cacc[j][0][k] += f1[32 * j + k] + f1[32 * j + 31 - k];
                    cacc[j][1][k] += f2[32 * j + k] + f2[32 * j + 31 - k];
                }
            if (r % 32 == 31) {
                for (int j = 0; j < 4; ++j)
                    for (int comp = 0; comp < 2; ++comp) {
                        double t = 0.0;
                        for (int k = 0; k < 16; ++k) {
                            t += cacc[j][comp][k];
                            cacc[j][comp][k] = 0.f;
                        }
                        s.chroma[(r / 32) * 4 + j][comp] = t;
                    }
            }
        }
    }

    if (moments) finish_moments(mom, s);
    if (stats) {
        for (int v = 0; v < 256; ++v) s.hist[v] = hist4[0][v] + hist4[1][v] + hist4[2][v] + hist4[3][v];
        s.lap_sum = static_cast<std::int64_t>(lap_border);
        s.lap_sq = lap_sq;
    }
}

namespace {

// The detail shares of a grey thumbnail (kVerifySize^2 bytes): a Haar-like pyramid of 2x2
// box means, 64 -> 32 -> 16 -> 8 -> 4 pixels. At each step the mean square of (level - its
// box means, repeated over the box) is the level's detail energy; the thumbnail's variance
// is exactly the sum of the four detail energies and the variance of the 4x4 level. out[k],
// k = 0..3: the share of details of 2^(k+1) thumbnail pixels (2: the finest); out[4]: the
// share of the 4x4 level. kDetailFloor (grey levels squared, about the thumbnail's rounding
// noise) is added to each of the five energies, so a flat image has five equal shares.
constexpr double kDetailFloor = 0.1;

void detail_shares(const std::uint8_t* thumb, float* out) {
    constexpr int T = kVerifySize;
    double level[T * T];
    for (int i = 0; i < T * T; ++i) level[i] = thumb[i];
    double energy[5];
    int n = T;
    for (int k = 0; k < 4; ++k, n /= 2) {
        const int h = n / 2;
        double sq = 0.0;
        for (int r = 0; r < h; ++r)
            for (int c = 0; c < h; ++c) {
                const double* a = level + (2 * r) * n + 2 * c;
                const double* b = a + n;
                const double m = ((a[0] + a[1]) + (b[0] + b[1])) / 4.0;
                sq += ((a[0] - m) * (a[0] - m) + (a[1] - m) * (a[1] - m)) +
                      ((b[0] - m) * (b[0] - m) + (b[1] - m) * (b[1] - m));
                level[r * h + c] = m;  // at or before this box's first pixel: read no more
            }
        energy[k] = sq / (static_cast<double>(n) * n);
    }
    double mean = 0.0, sq = 0.0;
    for (int i = 0; i < n * n; ++i) mean += level[i];
    mean /= n * n;
    for (int i = 0; i < n * n; ++i) sq += (level[i] - mean) * (level[i] - mean);
    energy[4] = sq / (n * n);
    double total = 0.0;
    for (double& e : energy) total += (e += kDetailFloor);
    for (int k = 0; k < 5; ++k) out[k] = static_cast<float>(energy[k] / total);
}

}  // namespace

void stats_from_sums(const TileSums& s, float* out) {
    constexpr double n = kTilePixels;
    constexpr double m = static_cast<double>(S - 2) * (S - 2);

    // Laplacian of y = 1000 Y: variance in grey levels squared.
    const double lap_mean = static_cast<double>(s.lap_sum) / m;
    const double lap_var = std::max(0.0, s.lap_sq / m - lap_mean * lap_mean) / 1e6;

    // Luminance moments, exact integers (sum y^2 < 2^53, so / n and the square are exact
    // or rounded once).
    const std::int64_t s1 = 299 * s.r + 587 * s.g + 114 * s.b;
    const std::int64_t s2 = 299 * 299 * s.rr + 587 * 587 * s.gg + 114 * 114 * s.bb +
                            2 * 299 * 587 * s.rg + 2 * 587 * 114 * s.gb + 2 * 299 * 114 * s.rb;
    const double lum_mean = static_cast<double>(s1) / n;
    const double lum_var = std::max(0.0, static_cast<double>(s2) / n - lum_mean * lum_mean);

    const double percentiles[5] = {0.01, 0.05, 0.50, 0.95, 0.99};
    float pct_values[5];
    for (int k = 0; k < 5; ++k) {
        const double need = percentiles[k] * n;
        std::int64_t cum = 0;
        int v = 255;
        for (int b = 0; b < 256; ++b) {
            cum += s.hist[b];
            if (static_cast<double>(cum) >= need) {
                v = b;
                break;
            }
        }
        pct_values[k] = static_cast<float>(v);
    }
    // -sum q log2 q with q = h / n = log2 n - sum h log2 h / n.
    const auto& hl = xlog2x();
    double sum_hl = 0.0;
    for (int b = 0; b < 256; ++b) sum_hl += hl[s.hist[b]];
    const double entropy = std::max(0.0, std::log2(n) - sum_hl / n);

    // Hasler & Suesstrunk: rg = R - G, yb = (R + G) / 2 - B; variances from exact
    // integer numerators n * sum x^2 - (sum x)^2 (< 2^63).
    const std::int64_t N = kTilePixels;
    const std::int64_t srg = s.r - s.g;
    const std::int64_t srg2 = s.rr - 2 * s.rg + s.gg;
    const std::int64_t st = s.r + s.g - 2 * s.b;  // t = 2 yb = R + G - 2B
    const std::int64_t st2 = s.rr + s.gg + 4 * s.bb + 2 * s.rg - 4 * s.gb - 4 * s.rb;
    const double rg_var = static_cast<double>(N * srg2 - srg * srg) / (n * n);
    const double yb_var = static_cast<double>(N * st2 - st * st) / (4.0 * n * n);
    const double rg_mean = static_cast<double>(srg) / n;
    const double yb_mean = static_cast<double>(st) / (2.0 * n);
    const double colourfulness = std::sqrt(rg_var + yb_var) +
                                 0.3 * std::sqrt(rg_mean * rg_mean + yb_mean * yb_mean);

    out[0] = static_cast<float>(lap_var);
    out[1] = static_cast<float>(lum_mean / 1000.0);
    out[2] = static_cast<float>(std::sqrt(lum_var) / 1000.0);
    for (int k = 0; k < 5; ++k) out[3 + k] = pct_values[k];
    out[8] = static_cast<float>(entropy);
    out[9] = static_cast<float>(colourfulness);
    out[10] = static_cast<float>(static_cast<double>(s.diff_sum) / n);
    detail_shares(s.thumb, out + 11);
}

void analyze_tile(const std::uint8_t* tile, const DescriptorWeights& w, float* stats,
                  std::uint8_t* thumb, float* descriptor) {
    const unsigned want = (stats ? kWantStats : 0u) | (thumb ? kWantThumb : 0u) |
                          (descriptor ? kWantDescriptor : 0u);
    TileSums s;
    tile_pass(tile, want, s);
    if (stats) stats_from_sums(s, stats);
    if (thumb) std::copy(s.thumb, s.thumb + kVerifyBytes, thumb);
    if (descriptor) descriptor_from_sums(s, w, descriptor);
}

void analyze_images(const ImageRef* images, std::size_t n, const DescriptorWeights& w,
                    std::uint8_t* tiles, float* stats, std::uint8_t* thumbs,
                    float* descriptors, int threads) {
    check_descriptor_weights(w);
    parallel_for(n, threads, [&](std::size_t i) {
        std::uint8_t* tile = tiles + i * kTileBytes;
        resize_rgb(images[i].pixels, images[i].h, images[i].w, tile, kTileSize, kTileSize,
                   images[i].channels);
        analyze_tile(tile, w, stats + i * kNumStats, thumbs + i * kVerifyBytes,
                     descriptors + i * kDescriptorDim);
    });
}

void image_stats_one(const std::uint8_t* tile, float* out) {
    analyze_tile(tile, DescriptorWeights{}, out, nullptr, nullptr);
}

void image_stats(const std::uint8_t* tiles, std::size_t n, float* out, int threads) {
    parallel_for(n, threads, [&](std::size_t i) {
        image_stats_one(tiles + i * kTileBytes, out + i * kNumStats);
    });
}

}  // namespace vislint
