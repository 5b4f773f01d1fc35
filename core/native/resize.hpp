// Resampling whole RGB images to fixed-size tiles (the working scale of every check).
#pragma once

#include <cstdint>
#include <vector>

namespace vislint {

// Resample an RGB image (h rows × w columns × 3, rows contiguous) to out_h × out_w × 3.
// Per axis: area averaging (exact box filter with fractional coverage) when shrinking,
// linear interpolation between pixel centres when enlarging. Aspect is not kept.
// Arithmetic (fixed, so results are reproducible): float weights, each output the sum of
// weight * pixel over its taps in source order, rows first then columns, then
// (uint8) clamp(v + 0.5, 0, 255).
// channels: bytes per source pixel, 3 (RGB) or 4 (RGBX/RGBA: the 4th byte is ignored).
void resize_rgb(const std::uint8_t* src, int h, int w, std::uint8_t* dst, int out_h, int out_w,
                int channels = 3);

// Reusable buffers of resize_rgb, so that a thread resizing many images allocates once per
// geometry (the taps only depend on the sizes).
struct ResizeScratch {
    // Taps 0 and 1 of one output column (a missing tap 1 has weight 0), each weight
    // repeated 4 times, and 3 * the first source column.
    struct alignas(16) XTaps {
        float w0[4], w1[4];
        int offset;
        int pad[3];
    };
    int in_w = -1, in_h = -1, out_w = -1, out_h = -1;  // geometry of the taps below
    int ky = 0;                                          // most vertical taps of an output
    std::vector<XTaps> x_taps;       // one per output column
    // Every further tap (2, 3, ...) of the outputs that have them, in output then tap
    // order: weight w, w, w, 0 and the float offsets of the output and of the pixel.
    struct alignas(16) XMore {
        float w[4];
        int out_offset, in_offset;
        int pad[2];
    };
    std::vector<XMore> x_more;
    std::vector<int> y_first, y_count;
    std::vector<float> y_weight;     // 4 floats per vertical tap (ky per output), x4
    std::vector<float> row;          // one source row as floats, padded
    std::vector<float> mid;          // ring of ky horizontally resampled rows
    std::vector<std::uint8_t> packed;  // one 4-channel source row packed to RGB
};

void resize_rgb(const std::uint8_t* src, int h, int w, std::uint8_t* dst, int out_h, int out_w,
                int channels, ResizeScratch& scratch);

}  // namespace vislint
