// Verification of near-duplicate candidates: is one image a geometric and photometric edit
// of the other (a copy), or another photograph that merely looks alike?
//
// Per image, a grey thumbnail: the 2x2 box means of the tile's luminance, kVerifySize^2 =
// 64 x 64 bytes (grey_thumbnail). Per candidate pair (a, b):
//
// 1. Smoothing and pyramids: both thumbnails are smoothed with the binomial [1 4 6 4 1] / 16
//    along x and y (sigma 1 px; resampling and JPEG differences then fall below the
//    residual a copy is allowed) and reduced to 32 and 16 px by 2x2 means. Each level is
//    normalised to zero mean and unit standard deviation for the alignment.
// 2. Alignment: the affine map x_b = A (x_a - c) + c + t, with c the centre, that carries
//    a's pixels onto b's, by inverse-compositional Gauss-Newton (Lucas-Kanade) on the
//    squared difference, from the identity: at 16 px for b and for b mirrored left-right
//    (the better correlation wins), then refined at 32 and 64 px; pixels with an error
//    far above the last step's mean do not steer the next (a changed region). The image
//    with the wider view is the template (when the coarse map shrinks, a and b swap
//    roles; the affine reported is always a onto b). It covers resizes, crops
//    (anisotropic scale and shift: the tile squashes every image to a square), small
//    rotations and flips; larger rotations are the rotation rule's (rotation.hpp).
//    A pair whose correlation after the 16 px alignment is under 0.95 gets no evidence (all
//    residuals 9): no copy or same-scene shot measured scores under 0.967 there.
// 3. Evidence at 64 px: b is warped onto a (bilinear; a's pixels that fall outside b, or
//    within 2 px of its edge, are left out), b's grey levels are mapped onto a's by a
//    monotone curve (the mean of a per grey level of b, made non-decreasing; fitted again
//    without the pixels the first fit misses by over a quarter of std(a): brightness,
//    contrast, gamma, saturation and clipping are photometric edits of a copy, a changed
//    region is not), and the residual is measured per cell of a 4 x 4 grid as
//    RMS(mapped b - a) / (std(a) + 4 grey levels), over the cells with content (a grey-level
//    std of 2 in a or in mapped b: two flat cells, like the black ground around two
//    different digits, match whatever the images show; fewer than 3 such cells: no
//    evidence). residual_median (the median cell) is small when both show the same
//    photograph; residual_max (the worst cell) is large where something changed: a moved
//    subject in a burst, an overlay.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vislint {

inline constexpr int kVerifySize = 64;
inline constexpr int kVerifyBytes = kVerifySize * kVerifySize;
inline constexpr int kVerifyCells = 4;  // grid of kVerifyCells^2 cells for the residual

// 64 x 64 grey thumbnail of a kTileSize^2 RGB tile: 2x2 means of Y = 0.299 R + 0.587 G +
// 0.114 B, rounded half up (computed by the tile pass, analyze.hpp).
void grey_thumbnail(const std::uint8_t* tile, std::uint8_t* out);

void grey_thumbnails(const std::uint8_t* tiles, std::size_t n, std::uint8_t* out, int threads);

struct PairEvidence {
    float residual_min;     // best cell
    float residual_median;  // median cell residual (RMS / std of a); large = not a copy
    float residual_p90;     // second-worst cell
    float residual_max;     // worst cell
    float correlation;      // correlation of a and aligned b (before the grey-level curve)
    float coarse;           // the same at 16 px, after the coarse alignment
    float coverage;         // share of a's pixels that fall inside b, 2 px clear of its edge
    std::uint8_t mirrored;  // 1 when b was mirrored left-right
    float affine[6];        // A00 A01 A10 A11 tx ty (64-px units): x_b = A (x_a - c) + c + t
};

// Evidence for one pair of grey thumbnails (kVerifyBytes each).
void verify_pair(const std::uint8_t* a, const std::uint8_t* b, PairEvidence& out);

// The two thumbnails aligned as verify_pair aligns them, for a person to look at: both on
// the grid of the wider view (the template), smoothed as the evidence sees them; first is
// a's, second b's (mirrored if the pair is), 0 where b's warp leaves b. False (outputs
// untouched) when the pair is nothing alike even coarsely.
bool aligned_pair(const std::uint8_t* a, const std::uint8_t* b, std::uint8_t* first,
                  std::uint8_t* second);

// Evidence for pairs (ia[p], ib[p]) of rows of `thumbs` (n x kVerifyBytes). Throws
// std::out_of_range for a row outside [0, n).
void verify_pairs(const std::uint8_t* thumbs, std::size_t n, const std::int64_t* ia,
                  const std::int64_t* ib, std::size_t pairs, PairEvidence* out, int threads);

}  // namespace vislint
