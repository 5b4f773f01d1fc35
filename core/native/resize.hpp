// Resampling whole RGB images to fixed-size tiles (the working scale of every check).
#pragma once

#include <cstdint>

namespace vislint {

// Resample an RGB image (h rows × w columns × 3, rows contiguous) to out_h × out_w × 3.
// Per axis: area averaging (exact box filter with fractional coverage) when shrinking,
// linear interpolation between pixel centres when enlarging. Aspect is not kept.
void resize_rgb(const std::uint8_t* src, int h, int w, std::uint8_t* dst, int out_h, int out_w);

}  // namespace vislint
