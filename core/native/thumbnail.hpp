// Aspect-preserving thumbnails for the HTML report (the pixels are shrunk by resize_rgb).
#pragma once

namespace vislint {

// Size of the thumbnail of an h × w image whose longer side is at most max_side pixels:
// the aspect ratio kept, each side rounded to the nearest pixel and at least 1. Images
// already within max_side keep their size (a thumbnail never enlarges).
void thumbnail_size(int h, int w, int max_side, int& out_h, int& out_w);

}  // namespace vislint
