// Rotated copies: a second near-duplicate rule for copies turned by any angle.
//
// The built-in descriptor (descriptor.hpp) is flip-invariant but not rotation-invariant.
// Here every image is described on a disk that a rotation maps onto itself:
//
// 1. Content radius R. Rotating with "expand" pads the canvas with black corners, so
//    the content is not the canvas. 64 rays walk in from the canvas edge over the tile's
//    max(R, G, B) until it exceeds kDarkLevel (the first bright sample sits ~0.75 tile px
//    inside the content edge, which is subtracted); R is the inradius of the smallest
//    centred rectangle (orientations in 1 degree steps) that encloses the 64 boundary
//    points, clamped to [0.3, 1] x the canvas inradius min(W, H) / 2. A ray that never
//    leaves black counts as reaching the canvas edge.
// 2. Disk image: the square [-R, R]^2 around the image centre, resampled from the tile
//    with the aspect ratio corrected, to kDiskSize^2 (bilinear, 2x2 supersampled).
// 3. Channels: Y (luminance), B = Y - Gauss(Y, sigma 1.5 px) (band-pass: structure, not
//    illumination), Cb = B - Y and Cr = R - Y.
// 4. Polar grids: kPolarRings rings x kPolarAngles angles within 0.9 of the disk radius,
//    each cell the mean of 2x2 bilinear samples.
// 5. Retrieval vector (kRotationDim = 160, rotation- and mirror-invariant): for Y and B on
//    8 rings (pairs of rings pooled), normalised to zero mean and unit energy with ring
//    weights proportional to radius (area), the ring means (8) and the magnitudes of the
//    angular Fourier terms 1..8 (8 x 8); then the chroma ring means (2 x 8) divided by
//    (std(Y) + 1), times 0.5. Fitted like the built-in descriptor (centred, L2).
// 6. Verification of a candidate pair: the normalised cross-correlation of the two
//    band-pass polar grids (ring weight ~ radius), maximised over 256 rotation angles and
//    the mirror, from their first 48 angular Fourier terms. 1 = same structure.
//
// Per image the verification input is stored compactly: the B polar grid quantised to
// int8 with a per-image scale (the correlation does not depend on the scale).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vislint {

inline constexpr int kRotationDim = 160;
inline constexpr int kPolarRings = 16;
inline constexpr int kPolarAngles = 128;
inline constexpr int kPolarCells = kPolarRings * kPolarAngles;
inline constexpr int kRotationInfo = 2;  // content radius / canvas inradius, band-pass std
inline constexpr int kDiskSize = 64;
inline constexpr int kDarkLevel = 20;    // max(R, G, B) at or below this is padding

// One tile (kTileSize^2 RGB) of an image of `width` x `height` px (only the aspect ratio
// matters). retrieval: kRotationDim floats (raw, before fitting); polar: kPolarCells
// int8; info: [R / (min(width, height) / 2), std of the band-pass polar grid (grey levels)].
void rotation_features(const std::uint8_t* tile, int width, int height, float* retrieval,
                       std::int8_t* polar, float* info);

void rotation_features_batch(const std::uint8_t* tiles, const std::int32_t* widths,
                             const std::int32_t* heights, std::size_t n, float* retrieval,
                             std::int8_t* polar, float* info, int threads);

// Verification of pairs (a[p], b[p]) of rows of `polar` (n x kPolarCells int8): score[p] =
// best normalised cross-correlation in [-1, 1] over rotations and the mirror, angle[p] =
// the rotation of b onto a in degrees [0, 360), mirrored[p] = 1 when b is mirrored.
void rotation_verify(const std::int8_t* polar, std::size_t n, const std::int64_t* a,
                     const std::int64_t* b, std::size_t pairs, float* score, float* angle,
                     std::uint8_t* mirrored, int threads);

}  // namespace vislint
