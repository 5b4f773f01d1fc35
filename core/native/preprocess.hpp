// Model inputs for ONNX image models: decoded RGB images -> a float32 batch.
//
// Per image: take the centre window (crop), resample it to out_h x out_w with resize_rgb
// (area averaging when shrinking, linear when enlarging, rounded to uint8 — as a Pillow
// resize would give the model's own preprocessing), then write
// (value / 255 - mean[c]) / std[c] in the requested layout and channel order.
#pragma once

#include <cstddef>
#include <cstdint>

#include "analyze.hpp"

namespace vislint {

struct PreprocessSpec {
    int out_h = 224, out_w = 224;  // model input height and width (pixels)
    // Centre crop: the largest centred window with the output's aspect ratio, scaled by
    // `crop` (0 < crop <= 1; 1 keeps the whole shorter side, 0.875 is the common 224-of-256).
    // crop <= 0: no crop, the whole image is resampled (aspect ratio ignored).
    double crop = 1.0;
    bool channels_first = true;    // NCHW (true) or NHWC (false)
    bool bgr = false;              // output channel order BGR instead of RGB
    float mean[3] = {0.f, 0.f, 0.f};  // per RGB channel, in units of value / 255
    float std[3] = {1.f, 1.f, 1.f};   // per RGB channel, > 0
};

// The source window of an h x w image under `spec`: rows [y0, y0 + wh), columns [x0, x0 + ww).
// Window sides are rounded to the nearest pixel (at least 1); offsets are floor((h - wh) / 2)
// and floor((w - ww) / 2).
void crop_window(int h, int w, const PreprocessSpec& spec, int& y0, int& x0, int& wh, int& ww);

// One image into `out` (out_h * out_w * 3 floats in the spec's layout).
void preprocess_image(const ImageRef& image, const PreprocessSpec& spec, float* out);

// n images into out[i * out_h * out_w * 3 ...], in parallel over images; results do not
// depend on `threads` (0 = all hardware threads). Throws std::invalid_argument on a bad spec.
void preprocess_images(const ImageRef* images, std::size_t n, const PreprocessSpec& spec,
                       float* out, int threads);

}  // namespace vislint
