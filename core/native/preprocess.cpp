#include "preprocess.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel.hpp"
#include "resize.hpp"

namespace vislint {

namespace {

void check_spec(const PreprocessSpec& s) {
    if (s.out_h < 1 || s.out_w < 1)
        throw std::invalid_argument("output size: expected height and width >= 1, got " +
                                    std::to_string(s.out_h) + " x " + std::to_string(s.out_w));
    if (!(s.crop <= 1.0) || std::isnan(s.crop))
        throw std::invalid_argument("crop: expected a fraction in (0, 1], or 0 for no crop, got " +
                                    std::to_string(s.crop));
    for (int c = 0; c < 3; ++c) {
        if (!std::isfinite(s.mean[c]) || !std::isfinite(s.std[c]) || !(s.std[c] > 0.f))
            throw std::invalid_argument(
                "mean, std: expected finite values with std > 0, got mean[" + std::to_string(c) +
                "] = " + std::to_string(s.mean[c]) + ", std[" + std::to_string(c) + "] = " +
                std::to_string(s.std[c]));
    }
}

int round_side(double v) { return std::max(1, static_cast<int>(std::lround(v))); }

}  // namespace

void crop_window(int h, int w, const PreprocessSpec& spec, int& y0, int& x0, int& wh, int& ww) {
    if (spec.crop <= 0.0) {
        y0 = x0 = 0;
        wh = h;
        ww = w;
        return;
    }
    // largest window with aspect out_w : out_h inside h x w, then scaled by crop
    double fh, fw;
    if (static_cast<double>(w) * spec.out_h >= static_cast<double>(h) * spec.out_w) {
        fh = h;
        fw = static_cast<double>(h) * spec.out_w / spec.out_h;
    } else {
        fw = w;
        fh = static_cast<double>(w) * spec.out_h / spec.out_w;
    }
    wh = std::min(h, round_side(fh * spec.crop));
    ww = std::min(w, round_side(fw * spec.crop));
    y0 = (h - wh) / 2;
    x0 = (w - ww) / 2;
}

void preprocess_image(const ImageRef& image, const PreprocessSpec& spec, float* out) {
    thread_local std::vector<std::uint8_t> window, resized;
    thread_local ResizeScratch scratch;
    int y0, x0, wh, ww;
    crop_window(image.h, image.w, spec, y0, x0, wh, ww);
    const std::uint8_t* src = image.pixels;
    const std::size_t ch = static_cast<std::size_t>(image.channels);
    if (wh != image.h || ww != image.w) {  // copy the window so that its rows are contiguous
        const std::size_t row = ch * ww;
        window.resize(row * wh);
        for (int y = 0; y < wh; ++y)
            std::memcpy(window.data() + y * row,
                        image.pixels + (static_cast<std::size_t>(y0 + y) * image.w + x0) * ch, row);
        src = window.data();
    }
    const std::size_t plane = static_cast<std::size_t>(spec.out_h) * spec.out_w;
    resized.resize(plane * 3);
    resize_rgb(src, wh, ww, resized.data(), spec.out_h, spec.out_w, image.channels, scratch);

    // value v of channel c -> (v / 255 - mean[c]) / std[c], looked up per channel
    float lut[3][256];
    for (int c = 0; c < 3; ++c)
        for (int v = 0; v < 256; ++v)
            lut[c][v] = static_cast<float>((v / 255.0 - spec.mean[c]) / spec.std[c]);
    const std::uint8_t* px = resized.data();
    for (int c = 0; c < 3; ++c) {
        const int dst_c = spec.bgr ? 2 - c : c;
        const float* table = lut[c];
        if (spec.channels_first) {
            float* dst = out + dst_c * plane;
            for (std::size_t i = 0; i < plane; ++i) dst[i] = table[px[3 * i + c]];
        } else {
            for (std::size_t i = 0; i < plane; ++i) out[3 * i + dst_c] = table[px[3 * i + c]];
        }
    }
}

void preprocess_images(const ImageRef* images, std::size_t n, const PreprocessSpec& spec,
                       float* out, int threads) {
    check_spec(spec);
    const std::size_t per_image = static_cast<std::size_t>(spec.out_h) * spec.out_w * 3;
    parallel_for(n, threads, [&](std::size_t i) {
        preprocess_image(images[i], spec, out + i * per_image);
    });
}

}  // namespace vislint
