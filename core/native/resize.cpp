#include "resize.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "simd.hpp"

namespace vislint {

namespace {

// Source taps of one output coordinate: [first, first + count) with weights summing to 1.
struct Taps {
    std::vector<int> first, count;
    std::vector<float> weight;  // concatenated, `count[o]` per output
};

Taps make_taps(int in, int out) {
    Taps t;
    t.first.resize(out);
    t.count.resize(out);
    const double scale = static_cast<double>(in) / out;
    for (int o = 0; o < out; ++o) {
        if (scale >= 1.0) {  // shrink: average the source interval [a, b)
            const double a = o * scale, b = (o + 1) * scale;
            const int i0 = static_cast<int>(std::floor(a));
            const int i1 = std::min(in, static_cast<int>(std::ceil(b)));
            t.first[o] = i0;
            t.count[o] = i1 - i0;
            for (int i = i0; i < i1; ++i) {
                const double cover = std::min<double>(b, i + 1) - std::max<double>(a, i);
                t.weight.push_back(static_cast<float>(cover / scale));
            }
        } else {  // enlarge: linear between the two nearest source centres
            const double x = std::clamp((o + 0.5) * scale - 0.5, 0.0, in - 1.0);
            const int i0 = std::min(static_cast<int>(x), in - 1);
            const int i1 = std::min(i0 + 1, in - 1);
            const float f = static_cast<float>(x - i0);
            t.first[o] = i0;
            t.count[o] = i1 > i0 ? 2 : 1;
            t.weight.push_back(i1 > i0 ? 1.0f - f : 1.0f);
            if (i1 > i0) t.weight.push_back(f);
        }
    }
    return t;
}

void fill4(float* dst, float v, float last) {
    dst[0] = dst[1] = dst[2] = v;
    dst[3] = last;
}

void prepare(ResizeScratch& s, int h, int w, int out_h, int out_w) {
    if (s.in_w == w && s.in_h == h && s.out_w == out_w && s.out_h == out_h) return;
    const Taps tx = make_taps(w, out_w), ty = make_taps(h, out_h);
    // Columns: taps 0 and 1 of every output (a missing tap 1 gets weight 0: 0 * pixel = +0
    // and v + 0 = v, so the sum is unchanged), then the outputs with more taps.
    s.x_taps.assign(static_cast<std::size_t>(out_w), ResizeScratch::XTaps{});
    s.x_more.clear();
    for (std::size_t o = 0, k = 0; o < static_cast<std::size_t>(out_w); k += tx.count[o], ++o) {
        ResizeScratch::XTaps& t = s.x_taps[o];
        t.offset = 3 * tx.first[o];
        fill4(t.w0, tx.weight[k], tx.weight[k]);
        const float w1 = tx.count[o] > 1 ? tx.weight[k + 1] : 0.0f;
        fill4(t.w1, w1, w1);
        for (int c = 2; c < tx.count[o]; ++c) {
            ResizeScratch::XMore more{};
            // The 4th lane (the next output's red, already final) gets + 0 * pixel.
            fill4(more.w, tx.weight[k + c], 0.0f);
            more.out_offset = static_cast<int>(3 * o);
            more.in_offset = 3 * (tx.first[o] + c);
            s.x_more.push_back(more);
        }
    }
    s.ky = *std::max_element(ty.count.begin(), ty.count.end());
    s.y_first = ty.first;
    s.y_count = ty.count;
    s.y_weight.assign(4 * static_cast<std::size_t>(out_h) * s.ky, 0.0f);
    for (std::size_t o = 0, k = 0; o < static_cast<std::size_t>(out_h); ++o)
        for (int c = 0; c < ty.count[o]; ++c, ++k)
            fill4(&s.y_weight[4 * (o * s.ky + c)], ty.weight[k], ty.weight[k]);
    // Source row: 3 floats per pixel, plus one zero pixel and one float so that the
    // 4-float reads of tap 1 (first + 1 <= w) stay inside.
    s.row.assign(3 * (static_cast<std::size_t>(w) + 1) + 1, 0.0f);
    s.mid.assign(static_cast<std::size_t>(s.ky) * (3 * static_cast<std::size_t>(out_w) + 1), 0.0f);
    s.in_w = w;
    s.in_h = h;
    s.out_w = out_w;
    s.out_h = out_h;
}

// (uint8) clamp(v + 0.5, 0, 255); v is a weighted mean of bytes, so 0 <= v < 256.
inline std::uint8_t to_byte(float v) {
    v = v + 0.5f;
    v = v < 0.f ? 0.f : v;
    v = v > 255.f ? 255.f : v;
    return static_cast<std::uint8_t>(v);
}

// One source row (as floats, x) resampled horizontally into m (3 * out_w floats + 1):
// m[3o + c] = ((w0 x[f] + w1 x[f+1]) + w2 x[f+2]) + ... over the output's taps.
void horizontal(const ResizeScratch& s, const float* x, float* m) {
    const ResizeScratch::XTaps* taps = s.x_taps.data();
    const ResizeScratch::XTaps* end = taps + s.x_taps.size();
#if defined(VISLINT_SSE2)
    // One 4-float vector per pixel (R, G, B and the next pixel's R); the 4th lane is
    // overwritten by the next output's store.
    float* d = m;
    // Two outputs per iteration, stored in order (the second store overwrites the first
    // one's 4th lane).
    const ResizeScratch::XTaps* end2 = taps + (s.x_taps.size() & ~std::size_t{1});
    for (; taps != end2; taps += 2, d += 6) {
        const float* p = x + taps[0].offset;
        const float* q = x + taps[1].offset;
        const __m128 a = _mm_add_ps(_mm_mul_ps(_mm_load_ps(taps[0].w0), _mm_loadu_ps(p)),
                                    _mm_mul_ps(_mm_load_ps(taps[0].w1), _mm_loadu_ps(p + 3)));
        const __m128 b = _mm_add_ps(_mm_mul_ps(_mm_load_ps(taps[1].w0), _mm_loadu_ps(q)),
                                    _mm_mul_ps(_mm_load_ps(taps[1].w1), _mm_loadu_ps(q + 3)));
        _mm_storeu_ps(d, a);
        _mm_storeu_ps(d + 3, b);
    }
    for (; taps != end; ++taps, d += 3) {
        const float* p = x + taps->offset;
        const __m128 a = _mm_add_ps(_mm_mul_ps(_mm_load_ps(taps->w0), _mm_loadu_ps(p)),
                                    _mm_mul_ps(_mm_load_ps(taps->w1), _mm_loadu_ps(p + 3)));
        _mm_storeu_ps(d, a);
    }
    for (const ResizeScratch::XMore& t : s.x_more) {
        float* d = m + t.out_offset;
        _mm_storeu_ps(d, _mm_add_ps(_mm_loadu_ps(d),
                                    _mm_mul_ps(_mm_load_ps(t.w), _mm_loadu_ps(x + t.in_offset))));
    }
#else
    for (float* d = m; taps != end; ++taps, d += 3) {
        const float* p = x + taps->offset;
        for (int c = 0; c < 3; ++c) d[c] = taps->w0[0] * p[c] + taps->w1[0] * p[3 + c];
    }
    for (const ResizeScratch::XMore& t : s.x_more)
        for (int c = 0; c < 3; ++c) m[t.out_offset + c] += t.w[0] * x[t.in_offset + c];
#endif
}

// One output row: d[j] = to_byte(((w0 m0[j] + w1 m1[j]) + w2 m2[j]) + ...).
template <int K>  // number of taps, or 0: any (count)
void vertical(const float* const* rows, const float* w4, int count, std::size_t n,
              std::uint8_t* d) {
    if (K > 0) count = K;
    std::size_t j = 0;
#if defined(VISLINT_SSE2)
    const __m128 half = _mm_set1_ps(0.5f);
    for (; j + 16 <= n; j += 16) {
        __m128 a[4];
        const __m128 w0 = _mm_loadu_ps(w4);
        for (int q = 0; q < 4; ++q) a[q] = _mm_mul_ps(w0, _mm_loadu_ps(rows[0] + j + 4 * q));
        for (int c = 1; c < count; ++c) {
            const __m128 wc = _mm_loadu_ps(w4 + 4 * c);
            const float* r = rows[c] + j;
            for (int q = 0; q < 4; ++q) a[q] = _mm_add_ps(a[q], _mm_mul_ps(wc, _mm_loadu_ps(r + 4 * q)));
        }
        // Truncation of v + 0.5 >= 0, then saturation to 0..255 = the clamp.
        __m128i i[4];
        for (int q = 0; q < 4; ++q) i[q] = _mm_cvttps_epi32(_mm_add_ps(a[q], half));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(d + j),
                         _mm_packus_epi16(_mm_packs_epi32(i[0], i[1]), _mm_packs_epi32(i[2], i[3])));
    }
#endif
    for (; j < n; ++j) {
        float a = w4[0] * rows[0][j];
        for (int c = 1; c < count; ++c) a += w4[4 * c] * rows[c][j];
        d[j] = to_byte(a);
    }
}

}  // namespace

void resize_rgb(const std::uint8_t* src, int h, int w, std::uint8_t* dst, int out_h, int out_w,
                int channels, ResizeScratch& s) {
    prepare(s, h, w, out_h, out_w);
    const std::size_t in_row = 3 * static_cast<std::size_t>(w);
    const std::size_t src_row = static_cast<std::size_t>(channels) * w;
    if (channels == 4) s.packed.resize(in_row);
    const std::size_t mid_row = 3 * static_cast<std::size_t>(out_w) + 1;
    const std::size_t out_row = 3 * static_cast<std::size_t>(out_w);
    float* x = s.row.data();
    const float* rows_small[16];
    std::vector<const float*> rows_big;
    const float** rows = rows_small;
    if (s.ky > 16) {
        rows_big.resize(s.ky);
        rows = rows_big.data();
    }
    int next = 0;  // next source row to resample horizontally (into ring slot next % ky)
    for (int o = 0; o < out_h; ++o) {
        const int first = s.y_first[o], count = s.y_count[o];
        for (; next < first + count; ++next) {
            const std::uint8_t* row = src + static_cast<std::size_t>(next) * src_row;
            if (channels == 4) {  // drop the 4th byte of each pixel
                for (int i = 0; i < w; ++i)
                    for (int c = 0; c < 3; ++c) s.packed[3 * i + c] = row[4 * i + c];
                row = s.packed.data();
            }
            bytes_to_floats(row, in_row, x);
            horizontal(s, x, s.mid.data() + static_cast<std::size_t>(next % s.ky) * mid_row);
        }
        for (int c = 0; c < count; ++c)
            rows[c] = s.mid.data() + static_cast<std::size_t>((first + c) % s.ky) * mid_row;
        const float* wy = s.y_weight.data() + 4 * static_cast<std::size_t>(o) * s.ky;
        std::uint8_t* d = dst + static_cast<std::size_t>(o) * out_row;
        switch (count) {
            case 1: vertical<1>(rows, wy, 1, out_row, d); break;
            case 2: vertical<2>(rows, wy, 2, out_row, d); break;
            case 3: vertical<3>(rows, wy, 3, out_row, d); break;
            default: vertical<0>(rows, wy, count, out_row, d); break;
        }
    }
}

void resize_rgb(const std::uint8_t* src, int h, int w, std::uint8_t* dst, int out_h, int out_w,
                int channels) {
    thread_local ResizeScratch scratch;
    resize_rgb(src, h, w, dst, out_h, out_w, channels, scratch);
}

}  // namespace vislint
