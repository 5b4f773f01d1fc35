#include "verify.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>

#include "analyze.hpp"
#include "parallel.hpp"
#include "stats.hpp"

namespace vislint {
namespace {

constexpr int N = kVerifySize;
constexpr int kIters16 = 8, kIters32 = 4, kIters64 = 2;  // most Gauss-Newton steps per level
constexpr double kConverged = 2e-4;  // a step under this (matrix terms; shift / side) ends a level
constexpr float kRobust = 4.0f;      // a pixel whose error passes this x the mean |error| of the
                                     // last step (a changed region) does not steer the next one
constexpr float kTrim = 0.25f;       // pixels further than this x std(a) from the first curve
                                     // are left out of the second
constexpr float kEdge = 2.0f;        // px of b's edge left out of the evidence (the smoothing's reach)
constexpr float kStdFloor = 1.0f;    // std(a) floor (grey levels): flat images verify nothing
constexpr float kNoise = 4.0f;       // grey levels added to std(a) when scaling residuals: JPEG noise
                                     // weighs less in a dark or low-contrast image
constexpr float kNoEvidence = 9.0f;  // residual reported when nothing can be compared
constexpr float kCellContent = 0.2f;  // share of std(a) the grey-level std of a cell of a or of
                                      // b (mapped onto a) must reach for the cell to be evidence:
                                      // cells (nearly) flat in both, like the black ground around
                                      // digits or strokes, match whatever the images show
constexpr int kMinCells = 3;          // cells with content below which nothing is measured
constexpr double kCoarseFloor = 0.95;  // coarse correlation below which a pair is not looked
                                       // at further (no copy or same-scene shot measured
                                       // below 0.967 after the 16 px alignment)

using Image = std::array<float, N * N>;  // a level of n x n uses the first n * n values

// x_b = A (x_a - c) + c + t, in one level's pixel units: m = {A00, A01, A10, A11, tx, ty}.
struct Warp {
    double m[6] = {1, 0, 0, 1, 0, 0};
    void to(double dx, double dy, double c, double& x, double& y) const {
        x = m[0] * dx + m[1] * dy + c + m[4];
        y = m[2] * dx + m[3] * dy + c + m[5];
    }
    bool sane(int n) const {  // not diverged: a map a copy could need
        const double det = m[0] * m[3] - m[1] * m[2];
        return det > 0.25 && det < 4.0 && std::fabs(m[4]) < n * 0.5 && std::fabs(m[5]) < n * 0.5;
    }
};

// Binomial [1 4 6 4 1] / 16 along x then y, edges replicated.
void smooth(const std::uint8_t* in, Image& out) {
    Image tmp;
    auto taps = [](float m2, float m1, float c, float p1, float p2) {
        return (m2 + p2 + 4.0f * (m1 + p1) + 6.0f * c) * (1.0f / 16);
    };
    for (int y = 0; y < N; ++y) {
        const std::uint8_t* r = in + y * N;
        float* o = &tmp[y * N];
        o[0] = taps(r[0], r[0], r[0], r[1], r[2]);
        o[1] = taps(r[0], r[0], r[1], r[2], r[3]);
        for (int x = 2; x < N - 2; ++x) o[x] = taps(r[x - 2], r[x - 1], r[x], r[x + 1], r[x + 2]);
        o[N - 2] = taps(r[N - 4], r[N - 3], r[N - 2], r[N - 1], r[N - 1]);
        o[N - 1] = taps(r[N - 3], r[N - 2], r[N - 1], r[N - 1], r[N - 1]);
    }
    for (int y = 0; y < N; ++y) {
        const float* r[5];
        for (int k = 0; k < 5; ++k) r[k] = &tmp[std::clamp(y + k - 2, 0, N - 1) * N];
        float* o = &out[y * N];
        for (int x = 0; x < N; ++x) o[x] = taps(r[0][x], r[1][x], r[2][x], r[3][x], r[4][x]);
    }
}

void halve(const Image& in, int n, Image& out) {  // n x n -> n/2 x n/2, 2x2 means
    const int h = n / 2;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < h; ++x) {
            const float* r = &in[2 * y * n + 2 * x];
            out[y * h + x] = 0.25f * (r[0] + r[1] + r[n] + r[n + 1]);
        }
}

void mirror(const Image& in, int n, Image& out) {
    for (int y = 0; y < n; ++y)
        for (int x = 0; x < n; ++x) out[y * n + x] = in[y * n + n - 1 - x];
}

// Sum and sum of squares of n values: four float lanes per row of up to 64 values (short
// dependency chains; exact enough at these magnitudes), added up in double.
void moments(const float* v, int n, double& sum, double& squares) {
    float s[4] = {}, q[4] = {};
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int l = 0; l < 4; ++l) s[l] += v[i + l], q[l] += v[i + l] * v[i + l];
    for (; i < n; ++i) s[0] += v[i], q[0] += v[i] * v[i];
    sum += (s[0] + s[1]) + (s[2] + s[3]);
    squares += (q[0] + q[1]) + (q[2] + q[3]);
}

void normalise(Image& v, int n) {  // zero mean, unit std (a flat level becomes zeros)
    double s = 0, ss = 0;
    for (int y = 0; y < n; ++y) moments(&v[y * n], n, s, ss);
    const double mean = s / (n * n);
    const double var = std::max(0.0, ss / (n * n) - mean * mean);
    const float k = var > 1e-12 ? static_cast<float>(1.0 / std::sqrt(var)) : 0.0f;
    const float m = static_cast<float>(mean);
    for (int i = 0; i < n * n; ++i) v[i] = (v[i] - m) * k;
}

// Bilinear sample of img (n x n) at (x, y); false outside [0, n-1]^2.
inline bool sample(const Image& img, int n, double x, double y, float& v) {
    if (!(x >= 0 && y >= 0 && x <= n - 1 && y <= n - 1)) return false;
    const int x0 = std::min(static_cast<int>(x), n - 2);
    const int y0 = std::min(static_cast<int>(y), n - 2);
    const float fx = static_cast<float>(x - x0), fy = static_cast<float>(y - y0);
    const float* r0 = &img[y0 * n + x0];
    const float* r1 = r0 + n;
    v = (1 - fy) * ((1 - fx) * r0[0] + fx * r0[1]) + fy * ((1 - fx) * r1[0] + fx * r1[1]);
    return true;
}

// Solve H x = g (6 x 6, symmetric) by Cholesky; false when H is not positive definite.
bool solve6(const double H[6][6], const float g[6], double x[6]) {
    double L[6][6] = {};
    for (int i = 0; i < 6; ++i)
        for (int j = 0; j <= i; ++j) {
            double s = H[i][j];
            for (int k = 0; k < j; ++k) s -= L[i][k] * L[j][k];
            if (i == j) {
                if (s <= 1e-9) return false;
                L[i][i] = std::sqrt(s);
            } else {
                L[i][j] = s / L[j][j];
            }
        }
    double y[6];
    for (int i = 0; i < 6; ++i) {
        double s = g[i];
        for (int k = 0; k < i; ++k) s -= L[i][k] * y[k];
        y[i] = s / L[i][i];
    }
    for (int i = 5; i >= 0; --i) {
        double s = y[i];
        for (int k = i + 1; k < 6; ++k) s -= L[k][i] * x[k];
        x[i] = s / L[i][i];
    }
    return true;
}

// Inverse-compositional Gauss-Newton: refine w so that I(w(x)) matches T(x) (both n x n,
// normalised). The steepest-descent images and Hessian come from T once, over the pixels
// at least `margin` from the edge; a pixel whose warp leaves I adds nothing to a step.
void align(const Image& T, const Image& I, int n, int iters, Warp& w) {
    const double c = (n - 1) / 2.0;
    const int margin = std::max(1, n / 16);
    static thread_local std::array<std::array<float, 6>, N * N> sd;
    static thread_local std::array<int, N * N> where;
    static thread_local std::array<std::array<float, 2>, N * N> rel;  // (x - c, y - c)
    int count = 0;
    float h[6][6] = {};  // float sums of a row, added up in double (exact enough, and fast)
    double H[6][6] = {};
    const int step = n == N ? 2 : 1;  // the finest level: every other pixel (a checkerboard)
    for (int y = margin; y < n - margin; ++y) {
        for (int x = margin + (step > 1 ? (y & 1) : 0); x < n - margin; x += step) {
            const float gx = 0.5f * (T[y * n + x + 1] - T[y * n + x - 1]);
            const float gy = 0.5f * (T[(y + 1) * n + x] - T[(y - 1) * n + x]);
            const float dx = static_cast<float>(x - c), dy = static_cast<float>(y - c);
            auto& s = sd[count];
            s = {gx * dx, gx * dy, gy * dx, gy * dy, gx, gy};
            for (int i = 0; i < 6; ++i)
                for (int j = 0; j < 6; ++j) h[i][j] += s[i] * s[j];
            rel[count] = {dx, dy};
            where[count++] = y * n + x;
        }
        for (int i = 0; i < 6; ++i)
            for (int j = 0; j < 6; ++j) H[i][j] += h[i][j], h[i][j] = 0;
    }
    float cut = 1e30f;  // errors beyond this are left out of the step (see kRobust)
    for (int it = 0; it < iters; ++it) {
        float g[6] = {};
        float abs_sum = 0;
        int used = 0;
        const float m0 = static_cast<float>(w.m[0]), m1 = static_cast<float>(w.m[1]),
                    m2 = static_cast<float>(w.m[2]), m3 = static_cast<float>(w.m[3]),
                    ox = static_cast<float>(c + w.m[4]), oy = static_cast<float>(c + w.m[5]);
        for (int k = 0; k < count; ++k) {
            const float xb = m0 * rel[k][0] + m1 * rel[k][1] + ox;
            const float yb = m2 * rel[k][0] + m3 * rel[k][1] + oy;
            float v;
            if (!sample(I, n, xb, yb, v)) continue;
            const float e = v - T[where[k]];
            abs_sum += std::fabs(e);
            ++used;
            if (std::fabs(e) > cut) continue;
            for (int i = 0; i < 6; ++i) g[i] += sd[k][i] * e;
        }
        if (used) cut = kRobust * abs_sum / used;
        double d[6];
        if (!solve6(H, g, d)) return;
        // w <- w o w(d)^-1, as 3x3 matrices on centre-relative coordinates
        const double a = 1 + d[0], b = d[1], e = d[2], f = 1 + d[3];
        const double det = a * f - b * e;
        if (std::fabs(det) < 1e-9) return;
        const double i00 = f / det, i01 = -b / det, i10 = -e / det, i11 = a / det;
        const double it0 = -(i00 * d[4] + i01 * d[5]), it1 = -(i10 * d[4] + i11 * d[5]);
        const double* m = w.m;
        Warp next;
        next.m[0] = m[0] * i00 + m[1] * i10;
        next.m[1] = m[0] * i01 + m[1] * i11;
        next.m[2] = m[2] * i00 + m[3] * i10;
        next.m[3] = m[2] * i01 + m[3] * i11;
        next.m[4] = m[0] * it0 + m[1] * it1 + m[4];
        next.m[5] = m[2] * it0 + m[3] * it1 + m[5];
        if (!next.sane(n)) return;
        w = next;
        const double step = std::max({std::fabs(d[0]), std::fabs(d[1]), std::fabs(d[2]),
                                      std::fabs(d[3]), std::fabs(d[4]) / n, std::fabs(d[5]) / n});
        if (step < kConverged) return;
    }
}

// Correlation of T and I(w(x)) over T's pixels whose warp falls inside I.
double correlation(const Image& T, const Image& I, int n, const Warp& w) {
    const double c = (n - 1) / 2.0;
    double st = 0, si = 0, stt = 0, sii = 0, sti = 0;
    int k = 0;
    for (int y = 0; y < n; ++y)
        for (int x = 0; x < n; ++x) {
            double xb, yb;
            w.to(x - c, y - c, c, xb, yb);
            float v;
            if (!sample(I, n, xb, yb, v)) continue;
            const double t = T[y * n + x];
            st += t, si += v, stt += t * t, sii += static_cast<double>(v) * v, sti += t * v;
            ++k;
        }
    if (k < n * n / 4) return -1;
    const double vt = stt - st * st / k, vi = sii - si * si / k;
    return vt > 1e-9 && vi > 1e-9 ? (sti - st * si / k) / std::sqrt(vt * vi) : 0.0;
}

Warp scaled(const Warp& w, double f) {  // the same map on a level f times larger
    Warp out = w;
    out.m[4] *= f;
    out.m[5] *= f;
    return out;
}

// The grey-level curve: for each of kCurveBins bins of b's grey level, the mean of a over
// the pixels in it (only those within `keep` of `prior`, when given), made non-decreasing by
// pooling adjacent violators (weighted by counts), and tabulated at kLut points per grey
// level (linear between the bins' centres, flat beyond the first and last).
constexpr int kCurveBins = 64, kLut = 4, kLutSize = 256 * kLut + 1;

void fit_curve(const Image& a, const Image& warped, const std::array<unsigned char, N * N>& valid,
               const float* prior, float keep, float* curve) {
    double sum[kCurveBins] = {};
    double cnt[kCurveBins] = {};
    for (int i = 0; i < N * N; ++i) {
        if (!valid[i]) continue;
        const float v = std::clamp(warped[i], 0.0f, 255.0f);
        if (prior) {
            const float t = v * kLut;
            const int j = std::min(static_cast<int>(t), kLutSize - 2);
            if (std::fabs(prior[j] + (t - j) * (prior[j + 1] - prior[j]) - a[i]) > keep) continue;
        }
        const int k = std::min(static_cast<int>(v * (kCurveBins / 256.0f)), kCurveBins - 1);
        sum[k] += a[i];
        cnt[k] += 1;
    }
    // pool adjacent violators over the non-empty bins
    double mean[kCurveBins], weight[kCurveBins], centre[kCurveBins];
    int first[kCurveBins], m = 0;
    for (int k = 0; k < kCurveBins; ++k) {
        if (cnt[k] == 0) continue;
        mean[m] = sum[k] / cnt[k], weight[m] = cnt[k], first[m] = k;
        while (m > 0 && mean[m - 1] > mean[m]) {
            mean[m - 1] = (mean[m - 1] * weight[m - 1] + mean[m] * weight[m]) / (weight[m - 1] + weight[m]);
            weight[m - 1] += weight[m];
            --m;
        }
        ++m;
    }
    if (m == 0) {
        std::fill(curve, curve + kLutSize, 0.0f);
        return;
    }
    // knots: each pooled block's value at the centre of its bins' span (in grey levels)
    for (int b = 0; b < m; ++b) {
        const int last = b + 1 < m ? first[b + 1] - 1 : kCurveBins - 1;
        centre[b] = (first[b] + last + 1) * 0.5 * (256.0 / kCurveBins);
    }
    for (int j = 0, b = 0; j < kLutSize; ++j) {
        const double v = static_cast<double>(j) / kLut;
        while (b + 1 < m && v > centre[b + 1]) ++b;
        if (b + 1 >= m || v <= centre[b]) {
            curve[j] = static_cast<float>(v <= centre[0] ? mean[0] : mean[b]);
        } else {
            const double t = (v - centre[b]) / (centre[b + 1] - centre[b]);
            curve[j] = static_cast<float>(mean[b] + t * (mean[b + 1] - mean[b]));
        }
    }
}

void evidence(const Image& a, const Image& b, const Warp& w, PairEvidence& out) {
    const double c = (N - 1) / 2.0;
    static thread_local Image warped;
    static thread_local std::array<unsigned char, N * N> valid;
    int count = 0;
    double sa = 0, saa = 0, sb = 0, sbb = 0, sab = 0;
    const float m0 = static_cast<float>(w.m[0]), m1 = static_cast<float>(w.m[1]),
                m2 = static_cast<float>(w.m[2]), m3 = static_cast<float>(w.m[3]),
                ox = static_cast<float>(c + w.m[4]), oy = static_cast<float>(c + w.m[5]);
    for (int y = 0; y < N; ++y) {
        float ra = 0, raa = 0, rb = 0, rbb = 0, rab = 0;  // this row's sums
        const float dy = static_cast<float>(y - c);
        for (int x = 0; x < N; ++x) {
            const float dx = static_cast<float>(x - c);
            float v;
            const int i = y * N + x;
            const float xb = m0 * dx + m1 * dy + ox, yb = m2 * dx + m3 * dy + oy;
            // within b, and clear of its edge, where the smoothing replicated edge pixels
            valid[i] = xb >= kEdge && yb >= kEdge && xb <= N - 1 - kEdge && yb <= N - 1 - kEdge &&
                       sample(b, N, xb, yb, v);
            if (!valid[i]) continue;
            warped[i] = v;
            const float u = a[i];
            ra += u, raa += u * u, rb += v, rbb += v * v, rab += u * v;
            ++count;
        }
        sa += ra, saa += raa, sb += rb, sbb += rbb, sab += rab;
    }
    out.coverage = static_cast<float>(count) / (N * N);
    out.residual_min = out.residual_median = out.residual_p90 = out.residual_max = kNoEvidence;
    out.correlation = 0;
    if (count < N * N / 2) return;
    const double va = saa - sa * sa / count, vb = sbb - sb * sb / count;
    out.correlation = va > 1e-9 && vb > 1e-9
                          ? static_cast<float>((sab - sa * sb / count) / std::sqrt(va * vb)) : 0.0f;
    const float std_a = std::max(kStdFloor, static_cast<float>(std::sqrt(va / count)));
    // b's grey levels mapped onto a's: a first curve from every pixel, then one from the
    // pixels it fits (a changed region, an overlay, must not bend the curve of the rest)
    float rough[kLutSize], curve[kLutSize];
    fit_curve(a, warped, valid, nullptr, 0.0f, rough);
    fit_curve(a, warped, valid, rough, kTrim * std_a, curve);
    constexpr int cell = N / kVerifyCells;
    constexpr int kCells = kVerifyCells * kVerifyCells;
    // per cell: squared residuals, and the sums of a and of b mapped onto a (their spread)
    double ss[kCells] = {}, a1[kCells] = {}, a2[kCells] = {}, b1[kCells] = {}, b2[kCells] = {};
    int cn[kCells] = {};
    for (int y = 0; y < N; ++y) {
        for (int x = 0; x < N; ++x) {
            const int i = y * N + x;
            if (!valid[i]) continue;
            const float t = std::clamp(warped[i], 0.0f, 255.0f) * kLut;
            const int j = std::min(static_cast<int>(t), kLutSize - 2);
            const float mapped = curve[j] + (t - j) * (curve[j + 1] - curve[j]);
            const float r = mapped - a[i];
            const int id = (y / cell) * kVerifyCells + x / cell;
            ss[id] += r * r;
            a1[id] += a[i], a2[id] += a[i] * a[i], b1[id] += mapped, b2[id] += mapped * mapped;
            ++cn[id];
        }
    }
    const auto spread = [](double s1, double s2, int k) {
        return std::sqrt(std::max(0.0, s2 / k - (s1 / k) * (s1 / k)));
    };
    float cells[kCells];
    int m = 0;
    for (int id = 0; id < kCells; ++id)
        if (cn[id] * 2 >= cell * cell &&
            std::max(spread(a1[id], a2[id], cn[id]), spread(b1[id], b2[id], cn[id])) >=
                kCellContent * std_a)
            cells[m++] = static_cast<float>(std::sqrt(ss[id] / cn[id])) / (std_a + kNoise);
    if (m < kMinCells) return;
    std::sort(cells, cells + m);
    out.residual_min = cells[0];
    out.residual_median = m % 2 ? cells[m / 2] : 0.5f * (cells[m / 2 - 1] + cells[m / 2]);
    out.residual_p90 = cells[std::max(0, m - 2)];
    out.residual_max = cells[m - 1];
}

}  // namespace

void grey_thumbnail(const std::uint8_t* tile, std::uint8_t* out) {
    static_assert(2 * N == kTileSize, "the thumbnail halves the tile");
    analyze_tile(tile, DescriptorWeights{}, nullptr, out, nullptr);
}

void grey_thumbnails(const std::uint8_t* tiles, std::size_t n, std::uint8_t* out, int threads) {
    parallel_for(n, threads, [&](std::size_t i) {
        grey_thumbnail(tiles + i * kTileBytes, out + i * kVerifyBytes);
    });
}

namespace {

// One thumbnail's smoothed levels: raw (grey levels, 64 px, for the evidence) and
// normalised (zero mean, unit std; 16, 32 and 64 px, for the alignment).
struct Levels {
    Image raw, n16, n32, n64;
};

void prepare(const std::uint8_t* thumb, Levels& l) {
    Image h32;
    smooth(thumb, l.raw);
    halve(l.raw, 64, h32);
    halve(h32, 32, l.n16);
    l.n32 = h32, l.n64 = l.raw;
    normalise(l.n16, 16), normalise(l.n32, 32), normalise(l.n64, 64);
}

// The coarse alignment of b onto template a at 16 px, as is and mirrored: the better one.
struct Coarse {
    Warp w;
    bool mirrored;
    double correlation;
};

Coarse coarse(const Levels& a, const Levels& b) {
    Image m16;
    mirror(b.n16, 16, m16);
    Warp plain, flipped;
    align(a.n16, b.n16, 16, kIters16, plain);
    align(a.n16, m16, 16, kIters16, flipped);
    const double c_plain = correlation(a.n16, b.n16, 16, plain);
    const double c_flipped = correlation(a.n16, m16, 16, flipped);
    return c_flipped > c_plain ? Coarse{flipped, true, c_flipped} : Coarse{plain, false, c_plain};
}

}  // namespace

namespace {

// A pair aligned: the template (the wider view), the moving image (mirrored when the pair
// is), and the warp of template pixels onto the moving image; `close` is false when the
// coarse alignment already found nothing alike (then only `coarse` and the warp are set).
struct Aligned {
    Levels a, b, mirrored_b;
    const Levels* t = nullptr;
    const Levels* moving = nullptr;
    Coarse c;
    double first_correlation = 0;  // of the first coarse alignment (b onto a)
    bool swapped = false, close = false;
    Warp w;
};

void align_pair(const std::uint8_t* a8, const std::uint8_t* b8, Aligned& al) {
    prepare(a8, al.a);
    prepare(b8, al.b);
    // The template is the image with the wider view (a crop of it is the other): warping
    // the wider one onto the crop's grid would shrink it and alias its detail.
    al.c = coarse(al.a, al.b);
    al.first_correlation = al.c.correlation;
    al.w = al.c.w;
    if (al.c.correlation < kCoarseFloor) return;  // nothing alike even coarsely
    al.close = true;
    al.swapped = al.c.w.m[0] * al.c.w.m[3] - al.c.w.m[1] * al.c.w.m[2] < 1.0;
    if (al.swapped) al.c = coarse(al.b, al.a);
    al.t = al.swapped ? &al.b : &al.a;
    al.moving = al.swapped ? &al.a : &al.b;
    if (al.c.mirrored) {  // go on with the moving image mirrored at every level
        Levels& m = al.mirrored_b;
        mirror(al.moving->raw, 64, m.raw), mirror(al.moving->n32, 32, m.n32);
        mirror(al.moving->n64, 64, m.n64);
        al.moving = &m;
    }
    al.w = scaled(al.c.w, 2);
    align(al.t->n32, al.moving->n32, 32, kIters32, al.w);
    al.w = scaled(al.w, 2);
    align(al.t->n64, al.moving->n64, 64, kIters64, al.w);
}

}  // namespace

void verify_pair(const std::uint8_t* a8, const std::uint8_t* b8, PairEvidence& out) {
    Aligned al;
    align_pair(a8, b8, al);
    out.coarse = static_cast<float>(al.first_correlation);
    out.mirrored = al.c.mirrored;
    if (!al.close) {  // no copy, no scene
        out.residual_min = out.residual_median = out.residual_p90 = out.residual_max = kNoEvidence;
        out.correlation = 0, out.coverage = 0;
        for (int k = 0; k < 6; ++k) out.affine[k] = static_cast<float>(al.w.m[k]);
        return;
    }
    evidence(al.t->raw, al.moving->raw, al.w, out);
    Warp w = al.w;
    if (al.swapped) {  // report the map from a onto b: the inverse
        const double* m = w.m;
        const double det = m[0] * m[3] - m[1] * m[2];
        const double i00 = m[3] / det, i01 = -m[1] / det, i10 = -m[2] / det, i11 = m[0] / det;
        Warp inv;
        inv.m[0] = i00, inv.m[1] = i01, inv.m[2] = i10, inv.m[3] = i11;
        inv.m[4] = -(i00 * m[4] + i01 * m[5]);
        inv.m[5] = -(i10 * m[4] + i11 * m[5]);
        w = inv;
    }
    for (int k = 0; k < 6; ++k) out.affine[k] = static_cast<float>(w.m[k]);
}

bool aligned_pair(const std::uint8_t* a8, const std::uint8_t* b8, std::uint8_t* first,
                  std::uint8_t* second) {
    Aligned al;
    align_pair(a8, b8, al);
    if (!al.close) return false;
    const double c = (N - 1) / 2.0;
    const double* m = al.w.m;
    for (int y = 0; y < N; ++y)
        for (int x = 0; x < N; ++x) {
            const int i = y * N + x;
            float v = 0.0f;
            const double dx = x - c, dy = y - c;
            const bool in = sample(al.moving->raw, N, m[0] * dx + m[1] * dy + c + m[4],
                                   m[2] * dx + m[3] * dy + c + m[5], v);
            const auto byte = [](float f) {
                return static_cast<std::uint8_t>(std::clamp(f + 0.5f, 0.0f, 255.0f));
            };
            // a's pixels first: when b is the template, a is the one warped onto it
            (al.swapped ? second : first)[i] = byte(al.t->raw[i]);
            (al.swapped ? first : second)[i] = in ? byte(v) : 0;
        }
    return true;
}

void verify_pairs(const std::uint8_t* thumbs, std::size_t n, const std::int64_t* ia,
                  const std::int64_t* ib, std::size_t pairs, PairEvidence* out, int threads) {
    for (std::size_t p = 0; p < pairs; ++p)
        if (ia[p] < 0 || ib[p] < 0 || static_cast<std::size_t>(ia[p]) >= n ||
            static_cast<std::size_t>(ib[p]) >= n)
            throw std::out_of_range("pair " + std::to_string(p) + " names a row outside [0, " +
                                    std::to_string(n) + ")");
    parallel_for(pairs, threads, [&](std::size_t p) {
        verify_pair(thumbs + ia[p] * kVerifyBytes, thumbs + ib[p] * kVerifyBytes, out[p]);
    });
}

}  // namespace vislint
