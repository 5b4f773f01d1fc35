// Baseline SIMD for the few kernels the compiler does not vectorise well.
//
// Portable -O3 only (no -march flags, no runtime dispatch): SSE2 is part of every
// x86-64 CPU, NEON of every AArch64 one. GCC 12 at the SSE2 baseline does not vectorise
// stride-3 byte access (no pshufb), mixes of 8/16/32-bit integer lanes (the channel
// moments: ~13 instructions per pixel instead of ~2 with pmaddwd/psadbw), or float
// clamps and float->byte narrowing (cmp/blend chains instead of maxps/packuswb). So:
//   - here: RGB deinterleave (SSE2, NEON) and bytes -> floats (SSE2);
//   - resize.cpp, stats.cpp (row pass, Laplacian) and descriptor.cpp (gradient block)
//     have `#if defined(VISLINT_SSE2)` blocks next to a plain loop.
// Every SIMD block performs the same IEEE float operations, in the same order, as the
// plain code beside it, and integer sums are exact, so a build with VISLINT_NO_SIMD
// (or a target without SSE2) gives byte-identical results; that has been checked on
// 3,999 photos and odd image sizes.
#pragma once

#include <cstddef>
#include <cstdint>

// (Define VISLINT_NO_SIMD to build the scalar paths everywhere, e.g. to test them.)
#if defined(VISLINT_NO_SIMD)
#elif defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define VISLINT_SSE2 1
#elif defined(__ARM_NEON) || defined(__ARM_NEON__)
#include <arm_neon.h>
#define VISLINT_NEON 1
#endif

namespace vislint {

// r[i], g[i], b[i] = rgb[3i], rgb[3i+1], rgb[3i+2] for i < n.
inline void deinterleave_rgb(const std::uint8_t* rgb, std::size_t n, std::uint8_t* r,
                             std::uint8_t* g, std::uint8_t* b) {
    std::size_t i = 0;
#if defined(VISLINT_SSE2)
    // Four rounds of byte unpacking turn 48 interleaved bytes into 16 R, 16 G, 16 B
    // (the SSE2 sequence OpenCV uses when SSSE3 is not available).
    for (; i + 16 <= n; i += 16) {
        const std::uint8_t* p = rgb + 3 * i;
        __m128i t00 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        __m128i t01 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
        __m128i t02 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32));
        __m128i t10 = _mm_unpacklo_epi8(t00, _mm_unpackhi_epi64(t01, t01));
        __m128i t11 = _mm_unpacklo_epi8(_mm_unpackhi_epi64(t00, t00), t02);
        __m128i t12 = _mm_unpacklo_epi8(t01, _mm_unpackhi_epi64(t02, t02));
        __m128i t20 = _mm_unpacklo_epi8(t10, _mm_unpackhi_epi64(t11, t11));
        __m128i t21 = _mm_unpacklo_epi8(_mm_unpackhi_epi64(t10, t10), t12);
        __m128i t22 = _mm_unpacklo_epi8(t11, _mm_unpackhi_epi64(t12, t12));
        __m128i t30 = _mm_unpacklo_epi8(t20, _mm_unpackhi_epi64(t21, t21));
        __m128i t31 = _mm_unpacklo_epi8(_mm_unpackhi_epi64(t20, t20), t22);
        __m128i t32 = _mm_unpacklo_epi8(t21, _mm_unpackhi_epi64(t22, t22));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(r + i),
                         _mm_unpacklo_epi8(t30, _mm_unpackhi_epi64(t31, t31)));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(g + i),
                         _mm_unpacklo_epi8(_mm_unpackhi_epi64(t30, t30), t32));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(b + i),
                         _mm_unpacklo_epi8(t31, _mm_unpackhi_epi64(t32, t32)));
    }
#elif defined(VISLINT_NEON)
    for (; i + 16 <= n; i += 16) {
        const uint8x16x3_t v = vld3q_u8(rgb + 3 * i);
        vst1q_u8(r + i, v.val[0]);
        vst1q_u8(g + i, v.val[1]);
        vst1q_u8(b + i, v.val[2]);
    }
#endif
    for (; i < n; ++i) {
        r[i] = rgb[3 * i];
        g[i] = rgb[3 * i + 1];
        b[i] = rgb[3 * i + 2];
    }
}

// x[j] = float(b[j]) for j < n.
inline void bytes_to_floats(const std::uint8_t* b, std::size_t n, float* x) {
    std::size_t j = 0;
#if defined(VISLINT_SSE2)
    const __m128i zero = _mm_setzero_si128();
    for (; j + 16 <= n; j += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + j));
        const __m128i lo = _mm_unpacklo_epi8(v, zero), hi = _mm_unpackhi_epi8(v, zero);
        _mm_storeu_ps(x + j, _mm_cvtepi32_ps(_mm_unpacklo_epi16(lo, zero)));
        _mm_storeu_ps(x + j + 4, _mm_cvtepi32_ps(_mm_unpackhi_epi16(lo, zero)));
        _mm_storeu_ps(x + j + 8, _mm_cvtepi32_ps(_mm_unpacklo_epi16(hi, zero)));
        _mm_storeu_ps(x + j + 12, _mm_cvtepi32_ps(_mm_unpackhi_epi16(hi, zero)));
    }
#endif
    for (; j < n; ++j) x[j] = b[j];
}

}  // namespace vislint
