#include "jpeg.hpp"

#ifdef VISLINT_HAVE_JPEG

#include <algorithm>
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE
#include <cstring>

#include <jpeglib.h>

namespace vislint {
namespace {

// libjpeg's error manager, extended with a jump target and a warning count.
struct ErrorManager {
    jpeg_error_mgr base;
    std::jmp_buf jump;
    int warnings = 0;
};

extern "C" void on_error(j_common_ptr cinfo) {
    std::longjmp(reinterpret_cast<ErrorManager*>(cinfo->err)->jump, 1);
}

extern "C" void on_message(j_common_ptr cinfo, int level) {
    if (level < 0) ++reinterpret_cast<ErrorManager*>(cinfo->err)->warnings;  // -1: a warning
}

unsigned read16(const std::uint8_t* p, bool little) {
    return little ? p[0] | p[1] << 8 : p[0] << 8 | p[1];
}

unsigned long read32(const std::uint8_t* p, bool little) {
    return little ? (unsigned long)p[0] | (unsigned long)p[1] << 8 | (unsigned long)p[2] << 16 |
                        (unsigned long)p[3] << 24
                  : (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
                        (unsigned long)p[2] << 8 | (unsigned long)p[3];
}

// The orientation tag (0x0112) of IFD0 in a TIFF block ("II*\0" or "MM\0*"): 1-8; 1 when
// absent; -1 when the block is not plain (bad bounds, another type or count, a value
// outside 1-8), which sends the file to Pillow.
int exif_orientation(const std::uint8_t* tiff, std::size_t size) {
    if (size < 8) return -1;
    const bool little = tiff[0] == 'I' && tiff[1] == 'I';
    if (!little && !(tiff[0] == 'M' && tiff[1] == 'M')) return -1;
    if (read16(tiff + 2, little) != 42) return -1;
    const unsigned long ifd = read32(tiff + 4, little);
    if (ifd + 2 > size) return -1;
    const unsigned count = read16(tiff + ifd, little);
    if (ifd + 2 + 12ul * count > size) return -1;
    for (unsigned e = 0; e < count; ++e) {
        const std::uint8_t* entry = tiff + ifd + 2 + 12 * e;
        if (read16(entry, little) != 0x0112) continue;
        const unsigned type = read16(entry + 2, little);
        const unsigned long n = read32(entry + 4, little);
        const unsigned value = read16(entry + 8, little);
        if (type != 3 || n != 1 || value < 1 || value > 8) return -1;
        return static_cast<int>(value);
    }
    return 1;
}

// Orientation from the saved APP1/APP2 markers: -1 when the file must go to Pillow (an MPO,
// several EXIF blocks, an EXIF block that is not plain).
int marker_orientation(j_decompress_ptr cinfo) {
    int orientation = 1, exif_blocks = 0;
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 2 && m->data_length >= 4 &&
            std::memcmp(m->data, "MPF\0", 4) == 0)
            return -1;
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
            std::memcmp(m->data, "Exif\0\0", 6) == 0) {
            if (++exif_blocks > 1 || m->data_length != m->original_length) return -1;
            orientation = exif_orientation(m->data + 6, m->data_length - 6);
            if (orientation < 0) return -1;
        }
    }
    return orientation;
}

// The part of decode_jpeg between setjmp and the end: only trivially destructible locals
// here, since a libjpeg error jumps back over this frame.
bool decode_into(j_decompress_ptr cinfo, ErrorManager& err, const std::uint8_t* data,
                 std::size_t size, int draft_to, int min_side, long long max_pixels,
                 JpegDecoded& out) {
    jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_save_markers(cinfo, JPEG_APP0 + 2, 0xFFFF);
    if (jpeg_read_header(cinfo, TRUE) != JPEG_HEADER_OK || err.warnings) return false;
    const int w = static_cast<int>(cinfo->image_width), h = static_cast<int>(cinfo->image_height);
    const bool gray = cinfo->num_components == 1 && cinfo->jpeg_color_space == JCS_GRAYSCALE;
    const bool colour = cinfo->num_components == 3 &&
                        (cinfo->jpeg_color_space == JCS_YCbCr || cinfo->jpeg_color_space == JCS_RGB);
    if (!(gray || colour) || cinfo->data_precision != 8) return false;
    if (static_cast<long long>(w) * h > max_pixels || std::min(w, h) < min_side) return false;
    const int orientation = marker_orientation(cinfo);
    if (orientation < 0) return false;

    int scale = 1;
    if (draft_to > 0) {
        const int fit = std::min(w / draft_to, h / draft_to);
        for (int s : {8, 4, 2, 1}) {
            if (fit >= s) { scale = s; break; }
        }
    }
    cinfo->scale_num = 1;
    cinfo->scale_denom = static_cast<unsigned>(scale);
    cinfo->out_color_space = JCS_RGB;  // grayscale is replicated, as Pillow's L -> RGB
    cinfo->dct_method = JDCT_ISLOW;
    cinfo->do_fancy_upsampling = TRUE;
    if (!jpeg_start_decompress(cinfo)) return false;
    const int ow = static_cast<int>(cinfo->output_width), oh = static_cast<int>(cinfo->output_height);
    out.rgb.resize(static_cast<std::size_t>(ow) * oh * 3);
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = out.rgb.data() + static_cast<std::size_t>(cinfo->output_scanline) * ow * 3;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) return false;
    }
    if (err.warnings) return false;
    jpeg_finish_decompress(cinfo);
    if (err.warnings) return false;
    out.width = ow;
    out.height = oh;
    out.full_width = w;
    out.full_height = h;
    out.orientation = orientation;
    out.grayscale = gray;
    return true;
}

}  // namespace

bool decode_jpeg(const std::uint8_t* data, std::size_t size, int draft_to, int min_side,
                 long long max_pixels, JpegDecoded& out) {
    if (size < 4 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) return false;
    jpeg_decompress_struct cinfo;
    ErrorManager err;
    cinfo.err = jpeg_std_error(&err.base);
    err.base.error_exit = on_error;
    err.base.emit_message = on_message;
    jpeg_create_decompress(&cinfo);
    bool ok = false;
    if (setjmp(err.jump) == 0) {
        ok = decode_into(&cinfo, err, data, size, draft_to, min_side, max_pixels, out);
    }
    jpeg_destroy_decompress(&cinfo);
    return ok;
}

bool have_jpeg() { return true; }

}  // namespace vislint

#else  // built without libjpeg: Pillow decodes everything

namespace vislint {

bool decode_jpeg(const std::uint8_t*, std::size_t, int, int, long long, JpegDecoded&) {
    return false;
}

bool have_jpeg() { return false; }

}  // namespace vislint

#endif
