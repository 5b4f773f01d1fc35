#include "resize.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

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

}  // namespace

void resize_rgb(const std::uint8_t* src, int h, int w, std::uint8_t* dst, int out_h, int out_w) {
    const Taps tx = make_taps(w, out_w), ty = make_taps(h, out_h);
    // Horizontal pass: h × out_w × 3 floats.
    std::vector<float> mid(static_cast<std::size_t>(h) * out_w * 3);
    for (int r = 0; r < h; ++r) {
        const std::uint8_t* row = src + static_cast<std::size_t>(r) * w * 3;
        float* m = mid.data() + static_cast<std::size_t>(r) * out_w * 3;
        std::size_t k = 0;
        for (int o = 0; o < out_w; ++o) {
            float acc[3] = {0.f, 0.f, 0.f};
            const std::uint8_t* p = row + 3 * tx.first[o];
            for (int c = 0; c < tx.count[o]; ++c, ++k, p += 3) {
                const float wgt = tx.weight[k];
                acc[0] += wgt * p[0];
                acc[1] += wgt * p[1];
                acc[2] += wgt * p[2];
            }
            m[3 * o] = acc[0];
            m[3 * o + 1] = acc[1];
            m[3 * o + 2] = acc[2];
        }
    }
    // Vertical pass into the tile, rounded and clamped.
    const std::size_t stride = static_cast<std::size_t>(out_w) * 3;
    std::vector<float> acc(stride);
    std::size_t k = 0;
    for (int o = 0; o < out_h; ++o) {
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int c = 0; c < ty.count[o]; ++c, ++k) {
            const float wgt = ty.weight[k];
            const float* m = mid.data() + static_cast<std::size_t>(ty.first[o] + c) * stride;
            for (std::size_t j = 0; j < stride; ++j) acc[j] += wgt * m[j];
        }
        std::uint8_t* d = dst + static_cast<std::size_t>(o) * stride;
        for (std::size_t j = 0; j < stride; ++j)
            d[j] = static_cast<std::uint8_t>(std::clamp(acc[j] + 0.5f, 0.f, 255.f));
    }
}

}  // namespace vislint
