#include "thumbnail.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace vislint {

void thumbnail_size(int h, int w, int max_side, int& out_h, int& out_w) {
    if (h < 1 || w < 1) throw std::invalid_argument("thumbnail: the image is empty");
    if (max_side < 1) throw std::invalid_argument("thumbnail: max_side must be >= 1");
    const int longer = std::max(h, w);
    if (longer <= max_side) {
        out_h = h;
        out_w = w;
        return;
    }
    const double scale = static_cast<double>(max_side) / longer;
    out_h = std::max(1, static_cast<int>(std::lround(h * scale)));
    out_w = std::max(1, static_cast<int>(std::lround(w * scale)));
}

}  // namespace vislint
