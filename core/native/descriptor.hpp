// The built-in, model-free image descriptor (near-duplicate retrieval).
//
// Raw vector v(tile), 224 values:
//   A "layout"    (64): 8x8 box means of the luminance normalised to zero mean
//                       and unit std (std floored at 1 grey level).
//   B "gradients" (128): on the normalised luminance box-downsampled to 32x32,
//                       central-difference gradient magnitudes binned into 8
//                       unsigned orientations (width pi/8, linear, circular)
//                       x a 4x4 grid of 8x8-px cells (bilinear between cell
//                       centres); L2-normalised, clipped at 0.2, re-normalised.
//   C "colour"    (32): per 32x32-px cell of the tile (4x4 grid), the means of
//                       (R-G)/(R+G+B+3) and (R+G-2B)/(R+G+B+3).
// With v_f = v(mirrored tile), each block emits [s, a] with s = (v+v_f)/2 and
// a = |v-v_f|/2 (identical for a tile and its mirror); each block's [s, a] is
// L2-normalised and scaled by its weight; the concatenation is L2-normalised.
// The colour block is divided by max(|[s, a]|, kColourNormFloor) rather than
// its norm, so the (noise) chroma direction of a nearly grey image is not
// blown up to full weight.
// Output layout (448): A.s A.a B.s B.a C.s C.a.
// A tile with no luminance structure and no colour (flat grey) gives the zero
// vector.
//
// Computation (descriptor.cpp, from the one pass over the tile in analyze.hpp): A from
// exact integer box sums; B in float, the angle from an odd minimax polynomial of
// atan (< 5e-6 bin), bins and cells weighted exactly as specified; C in float. Sums
// run in an order that is symmetric under a left-right mirror, so v(mirrored tile) is
// exactly v(tile) with columns reversed and orientation bins b <-> 7 - b, and v_f is
// obtained by that permutation instead of a second pass.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vislint {

inline constexpr int kLayoutDim = 64;
inline constexpr int kGradientDim = 128;
inline constexpr int kColourDim = 32;
inline constexpr int kRawDim = kLayoutDim + kGradientDim + kColourDim;  // 224
inline constexpr int kDescriptorDim = 2 * kRawDim;                      // 448

inline constexpr double kColourNormFloor = 0.3;

// Defaults measured on 3,999 natural photos (see the bindings docstring):
// the specified 1.0 / 1.0 / 0.5 let 5%-cropped copies fall below unrelated
// nearest neighbours far more often.
struct DescriptorWeights {
    double layout = 0.4;
    double gradients = 1.0;
    double colour = 0.4;
};

// Raw vector of a tile (mirror = of the tile mirrored left-right).
void descriptor_raw(const std::uint8_t* tile, bool mirror, double* v);

// Throws std::invalid_argument unless every weight is finite and >= 0.
void check_descriptor_weights(const DescriptorWeights& w);

// out: kDescriptorDim floats.
void descriptor_one(const std::uint8_t* tile, const DescriptorWeights& w, float* out);

// out: n * kDescriptorDim floats (row-major).
void descriptor(const std::uint8_t* tiles, std::size_t n, const DescriptorWeights& w,
                float* out, int threads);

}  // namespace vislint
