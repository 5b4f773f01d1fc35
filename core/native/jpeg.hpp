// JPEG decoding straight through libjpeg(-turbo): the fast path for the common case.
//
// Only built when CMake finds libjpeg (VISLINT_HAVE_JPEG); without it every image goes
// through Pillow. The fast path decodes exactly what Pillow would (same library family,
// same settings: integer IDCT, fancy upsampling, DCT scaling chosen like Pillow's draft
// mode), and declines everything else so that Pillow handles it and classifies failures.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vislint {

struct JpegDecoded {
    int width = 0, height = 0;            // of `rgb`, after DCT scaling
    int full_width = 0, full_height = 0;  // in the header, before scaling and orientation
    int orientation = 1;                  // EXIF orientation 1-8 (1 when absent)
    bool grayscale = false;               // one component (Pillow's mode "L")
    std::vector<std::uint8_t> rgb;        // height × width × 3
};

// Decode an 8-bit JPEG with 1 or 3 components to RGB; false (and `out` unspecified) when the
// file is not such a JPEG or anything is unusual: CMYK, 12-bit, an MPO (several images), a
// header size outside [min_side, max_pixels], any libjpeg warning (truncated or damaged
// data), an EXIF orientation that is not one plain SHORT in IFD0, or any error.
// draft_to > 0: decode at the scale 1/s, s in {8, 4, 2, 1}, the largest with
// s <= min(width / draft_to, height / draft_to) (integer division), as Pillow's draft mode does.
// Thread-safe; never throws for bad data.
bool decode_jpeg(const std::uint8_t* data, std::size_t size, int draft_to, int min_side,
                 long long max_pixels, JpegDecoded& out);

// True when this build has the libjpeg fast path.
bool have_jpeg();

}  // namespace vislint
