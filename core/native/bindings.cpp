// Python bindings of the vislint native core (the only file that sees Python).
//
// Pattern for every function: check dtypes/shapes and convert the arguments
// to C-contiguous arrays of the working dtype while holding the GIL, allocate
// the outputs as NumPy arrays, then release the GIL for the loop.
// Algorithm errors (std::invalid_argument) surface as ValueError.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "analyze.hpp"
#include "descriptor.hpp"
#include "graph.hpp"
#include "jpeg.hpp"
#include "parallel.hpp"
#include "preprocess.hpp"
#include "resize.hpp"
#include "rotation.hpp"
#include "stats.hpp"
#include "thumbnail.hpp"
#include "verify.hpp"

namespace py = pybind11;

namespace {

template <class T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) {
        if (d) s += ", ";
        s += std::to_string(a.shape(d));
    }
    if (a.ndim() == 1) s += ",";
    return s + ")";
}

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

std::string describe(const py::array& a) {
    return dtype_str(a) + " array of shape " + shape_str(a);
}

enum class Kind { Uint8, Integer, Floating };

// Check the dtype kind (no silent float->int or int->float casts), then
// convert to the working dtype, C order.
template <class T>
carray<T> convert(const py::array& a, const std::string& name, Kind kind,
                  const std::string& expected) {
    const char k = a.dtype().kind();
    bool ok = false;
    switch (kind) {
        case Kind::Uint8: ok = (k == 'u' && a.dtype().itemsize() == 1); break;
        case Kind::Integer: ok = (k == 'i' || k == 'u'); break;
        case Kind::Floating: ok = (k == 'f'); break;
    }
    if (!ok) throw py::value_error(name + ": expected " + expected + ", got " + describe(a));
    auto out = carray<T>::ensure(a);
    if (!out) throw py::value_error(name + ": could not convert " + describe(a) + " to " + expected);
    return out;
}

carray<std::uint8_t> as_tiles(const py::array& tiles) {
    const std::string expected = "uint8 array of shape (N, 128, 128, 3)";
    const bool shape_ok = tiles.ndim() == 4 && tiles.shape(1) == vislint::kTileSize &&
                          tiles.shape(2) == vislint::kTileSize && tiles.shape(3) == 3;
    if (!shape_ok || tiles.dtype().kind() != 'u' || tiles.dtype().itemsize() != 1)
        throw py::value_error("tiles: expected " + expected + ", got " + describe(tiles));
    return convert<std::uint8_t>(tiles, "tiles", Kind::Uint8, expected);
}

void check_threads(int threads) {
    if (threads < 0)
        throw py::value_error("threads: expected an int >= 0 (0 = all hardware threads), got " +
                              std::to_string(threads));
}

// neighbors int64[N, k] and sims float32[N, k] with the same shape.
std::pair<carray<std::int64_t>, carray<float>> as_knn(const py::array& neighbors,
                                                       const py::array& sims) {
    auto nb = convert<std::int64_t>(neighbors, "neighbors", Kind::Integer,
                                    "integer array of shape (N, k)");
    auto sm = convert<float>(sims, "sims", Kind::Floating, "float array of shape (N, k)");
    if (nb.ndim() != 2)
        throw py::value_error("neighbors: expected integer array of shape (N, k), got " +
                              describe(neighbors));
    if (sm.ndim() != 2 || sm.shape(0) != nb.shape(0) || sm.shape(1) != nb.shape(1))
        throw py::value_error("sims: expected float array of the same shape as neighbors " +
                              shape_str(nb) + ", got " + describe(sims));
    return {nb, sm};
}

py::array_t<float> image_stats_py(const py::array& tiles, int threads) {
    check_threads(threads);
    auto t = as_tiles(tiles);
    const auto n = static_cast<std::size_t>(t.shape(0));
    py::array_t<float> out(std::vector<py::ssize_t>{static_cast<py::ssize_t>(n), vislint::kNumStats});
    const std::uint8_t* src = t.data();
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        vislint::image_stats(src, n, dst, threads);
    }
    return out;
}

py::array_t<float> descriptor_py(const py::array& tiles, int threads, double weight_layout,
                                 double weight_gradients, double weight_colour) {
    check_threads(threads);
    auto t = as_tiles(tiles);
    const auto n = static_cast<std::size_t>(t.shape(0));
    vislint::DescriptorWeights w;
    w.layout = weight_layout;
    w.gradients = weight_gradients;
    w.colour = weight_colour;
    py::array_t<float> out(
        std::vector<py::ssize_t>{static_cast<py::ssize_t>(n), vislint::kDescriptorDim});
    const std::uint8_t* src = t.data();
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        vislint::descriptor(src, n, w, dst, threads);
    }
    return out;
}

py::array_t<std::int64_t> components_py(std::int64_t n, const py::array& i, const py::array& j) {
    if (n < 0) throw py::value_error("n: expected an int >= 0, got " + std::to_string(n));
    auto ii = convert<std::int64_t>(i, "i", Kind::Integer, "integer array of shape (E,)");
    auto jj = convert<std::int64_t>(j, "j", Kind::Integer, "integer array of shape (E,)");
    if (ii.ndim() != 1)
        throw py::value_error("i: expected integer array of shape (E,), got " + describe(i));
    if (jj.ndim() != 1 || jj.shape(0) != ii.shape(0))
        throw py::value_error("j: expected integer array of the same shape as i " + shape_str(ii) +
                              ", got " + describe(j));
    const auto e = static_cast<std::size_t>(ii.shape(0));
    py::array_t<std::int64_t> out(static_cast<py::ssize_t>(n));
    const std::int64_t* pi = ii.data();
    const std::int64_t* pj = jj.data();
    std::int64_t* dst = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        vislint::components(n, pi, pj, e, dst);
    }
    return out;
}

void knn_add_block_py(vislint::KnnCandidates& self, const py::array& dist, std::size_t row0,
                      int threads) {
    check_threads(threads);
    const std::string expected = "float32 array of shape (rows, n - row0)";
    if (row0 >= self.n())
        throw py::value_error("row0: expected < n = " + std::to_string(self.n()) + ", got " +
                              std::to_string(row0));
    if (dist.ndim() != 2 || dist.dtype().kind() != 'f' ||
        static_cast<std::size_t>(dist.shape(1)) != self.n() - row0 ||
        row0 + static_cast<std::size_t>(dist.shape(0)) > self.n())
        throw py::value_error("dist: expected " + expected + " with row0 + rows <= n = " +
                              std::to_string(self.n()) + ", got " + describe(dist));
    auto d = convert<float>(dist, "dist", Kind::Floating, expected);
    const float* pd = d.data();
    const auto rows = static_cast<std::size_t>(d.shape(0));
    py::gil_scoped_release nogil;
    self.add_block(pd, rows, row0, threads);
}

py::array_t<std::int64_t> knn_indices_py(const vislint::KnnCandidates& self) {
    py::array_t<std::int64_t> out(std::vector<py::ssize_t>{static_cast<py::ssize_t>(self.n()),
                                                           static_cast<py::ssize_t>(self.k())});
    self.indices(out.mutable_data());
    return out;
}

py::array_t<float> pair_dots_py(const py::array& a, const py::array& ia, const py::array& b,
                                const py::array& ib, int threads) {
    check_threads(threads);
    const std::string expected = "float32 array of shape (rows, d)";
    if (a.ndim() != 2 || b.ndim() != 2 || a.shape(1) != b.shape(1))
        throw py::value_error("a, b: expected two 2-D float arrays with the same number of "
                              "columns, got " + describe(a) + " and " + describe(b));
    auto fa = convert<float>(a, "a", Kind::Floating, expected);
    auto fb = convert<float>(b, "b", Kind::Floating, expected);
    auto xa = convert<std::int64_t>(ia, "ia", Kind::Integer, "integer array of shape (P,)");
    auto xb = convert<std::int64_t>(ib, "ib", Kind::Integer, "integer array of shape (P,)");
    if (xa.ndim() != 1 || xb.ndim() != 1 || xa.shape(0) != xb.shape(0))
        throw py::value_error("ia, ib: expected two integer arrays of the same shape (P,), got " +
                              describe(ia) + " and " + describe(ib));
    const auto n = static_cast<std::size_t>(xa.shape(0));
    py::array_t<float> out(static_cast<py::ssize_t>(n));
    const float* pa = fa.data();
    const float* pb = fb.data();
    const std::int64_t* pia = xa.data();
    const std::int64_t* pib = xb.data();
    float* dst = out.mutable_data();
    const auto ra = static_cast<std::size_t>(fa.shape(0));
    const auto rb = static_cast<std::size_t>(fb.shape(0));
    const auto d = static_cast<std::size_t>(fa.shape(1));
    {
        py::gil_scoped_release nogil;
        vislint::pair_dots(pa, ra, pia, pb, rb, pib, n, d, dst, threads);
    }
    return out;
}

py::array_t<std::int64_t> center_groups_py(const py::array& neighbors, const py::array& sims,
                                           double threshold, const py::array& order) {
    auto [nb, sm] = as_knn(neighbors, sims);
    const auto n = static_cast<std::size_t>(nb.shape(0));
    const auto k = static_cast<std::size_t>(nb.shape(1));
    auto od = convert<std::int64_t>(order, "order", Kind::Integer, "integer array of shape (N,)");
    if (od.ndim() != 1 || static_cast<std::size_t>(od.shape(0)) != n)
        throw py::value_error("order: expected integer array of shape (" + std::to_string(n) +
                              ",) (a permutation of the rows of neighbors), got " +
                              describe(order));
    py::array_t<std::int64_t> out(static_cast<py::ssize_t>(n));
    const std::int64_t* pn = nb.data();
    const float* ps = sm.data();
    const std::int64_t* po = od.data();
    std::int64_t* dst = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        vislint::center_groups(n, k, pn, ps, static_cast<float>(threshold), po, dst);
    }
    return out;
}

py::tuple label_tally_py(const py::array& neighbors, const py::array& sims,
                         const py::array& labels, std::int64_t n_labels, double min_sim,
                         int threads) {
    check_threads(threads);
    if (n_labels < 0)
        throw py::value_error("n_labels: expected an int >= 0, got " + std::to_string(n_labels));
    auto [nb, sm] = as_knn(neighbors, sims);
    const auto n = static_cast<std::size_t>(nb.shape(0));
    const auto k = static_cast<std::size_t>(nb.shape(1));
    auto lb = convert<std::int32_t>(labels, "labels", Kind::Integer, "integer array of shape (N,)");
    if (lb.ndim() != 1 || static_cast<std::size_t>(lb.shape(0)) != n)
        throw py::value_error("labels: expected integer array of shape (" + std::to_string(n) +
                              ",) (one per row of neighbors), got " + describe(labels));
    const auto np_ = static_cast<py::ssize_t>(n);
    py::array_t<std::int32_t> suggested(np_);
    py::array_t<float> agreement(np_);
    py::array_t<float> support(np_);
    const std::int64_t* pn = nb.data();
    const float* ps = sm.data();
    const std::int32_t* pl = lb.data();
    std::int32_t* o_sug = suggested.mutable_data();
    float* o_agr = agreement.mutable_data();
    float* o_sup = support.mutable_data();
    {
        py::gil_scoped_release nogil;
        vislint::label_tally(n, k, pn, ps, pl, n_labels, static_cast<float>(min_sim), o_sug, o_agr,
                             o_sup, threads);
    }
    return py::make_tuple(suggested, agreement, support);
}

// The images of a list as C-contiguous uint8 arrays (kept alive in `held`).
std::vector<vislint::ImageRef> as_images(const py::list& images,
                                         std::vector<carray<std::uint8_t>>& held) {
    held.reserve(images.size());
    for (std::size_t i = 0; i < images.size(); ++i) {
        py::array a = py::array::ensure(images[i]);
        if (!a || a.ndim() != 3 || (a.shape(2) != 3 && a.shape(2) != 4) || a.shape(0) < 1 ||
            a.shape(1) < 1)
            throw py::value_error("images[" + std::to_string(i) +
                                  "]: expected a uint8 array of shape (H, W, 3) or (H, W, 4), got " +
                                  (a ? describe(a) : std::string("a non-array")));
        held.push_back(convert<std::uint8_t>(a, "images[" + std::to_string(i) + "]", Kind::Uint8,
                                             "uint8 array of shape (H, W, 3) or (H, W, 4)"));
    }
    std::vector<vislint::ImageRef> refs(held.size());
    for (std::size_t i = 0; i < held.size(); ++i)
        refs[i] = {held[i].data(), static_cast<int>(held[i].shape(0)),
                   static_cast<int>(held[i].shape(1)), static_cast<int>(held[i].shape(2))};
    return refs;
}

// None, or (uint8[h, w, 3] RGB, header width, header height, EXIF orientation, mode).
py::object decode_jpeg_py(const py::bytes& data, int draft_to, int min_side, long long max_pixels) {
    char* buffer = nullptr;
    py::ssize_t size = 0;
    if (PYBIND11_BYTES_AS_STRING_AND_SIZE(data.ptr(), &buffer, &size) != 0) throw py::error_already_set();
    auto decoded = std::make_unique<vislint::JpegDecoded>();
    bool ok;
    {
        py::gil_scoped_release nogil;
        ok = vislint::decode_jpeg(reinterpret_cast<const std::uint8_t*>(buffer),
                                  static_cast<std::size_t>(size), draft_to, min_side, max_pixels,
                                  *decoded);
    }
    if (!ok) return py::none();
    vislint::JpegDecoded* raw = decoded.release();
    py::capsule owner(raw, [](void* p) { delete static_cast<vislint::JpegDecoded*>(p); });
    py::array_t<std::uint8_t> pixels({static_cast<py::ssize_t>(raw->height),
                                      static_cast<py::ssize_t>(raw->width), py::ssize_t{3}},
                                     raw->rgb.data(), owner);
    return py::make_tuple(pixels, raw->full_width, raw->full_height, raw->orientation,
                          raw->grayscale ? "L" : "RGB");
}

py::array_t<std::uint8_t> tiles_from_images_py(const py::list& images, int size, int threads) {
    check_threads(threads);
    if (size < 1) throw py::value_error("size: expected an int >= 1, got " + std::to_string(size));
    std::vector<carray<std::uint8_t>> held;
    const std::vector<vislint::ImageRef> refs = as_images(images, held);
    const std::size_t n = refs.size();
    py::array_t<std::uint8_t> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(size),
                                   static_cast<py::ssize_t>(size), py::ssize_t{3}});
    std::uint8_t* dst = out.mutable_data();
    const std::size_t tile_bytes = static_cast<std::size_t>(size) * size * 3;
    {
        py::gil_scoped_release nogil;
        vislint::parallel_for(n, threads, [&](std::size_t i) {
            vislint::resize_rgb(refs[i].pixels, refs[i].h, refs[i].w, dst + i * tile_bytes, size,
                                size, refs[i].channels);
        });
    }
    return out;
}

py::array_t<std::uint8_t> thumbnail_py(const py::array& image, int max_side) {
    if (image.ndim() != 3 || (image.shape(2) != 3 && image.shape(2) != 4) ||
        image.dtype().kind() != 'u' || image.dtype().itemsize() != 1)
        throw py::value_error("image: expected a uint8 array of shape (H, W, 3) or (H, W, 4), got " +
                              describe(image));
    py::list one;
    one.append(image);
    std::vector<carray<std::uint8_t>> held;
    const vislint::ImageRef ref = as_images(one, held)[0];
    int out_h = 0, out_w = 0;
    vislint::thumbnail_size(ref.h, ref.w, max_side, out_h, out_w);
    py::array_t<std::uint8_t> out({static_cast<py::ssize_t>(out_h), static_cast<py::ssize_t>(out_w),
                                   py::ssize_t{3}});
    std::uint8_t* dst = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        vislint::resize_rgb(ref.pixels, ref.h, ref.w, dst, out_h, out_w, ref.channels);
    }
    return out;
}

void preprocess_py(const py::list& images, py::array out, const std::string& layout,
                   double crop, const py::sequence& mean, const py::sequence& std_, bool bgr,
                   int threads) {
    check_threads(threads);
    if (layout != "NCHW" && layout != "NHWC")
        throw py::value_error("layout: expected 'NCHW' or 'NHWC', got '" + layout + "'");
    if (mean.size() != 3 || std_.size() != 3)
        throw py::value_error("mean, std: expected 3 values each (R, G, B), got " +
                              std::to_string(mean.size()) + " and " + std::to_string(std_.size()));
    const bool nchw = layout == "NCHW";
    const std::string expected = std::string("writable C-contiguous float32 array of shape ") +
                                 (nchw ? "(N, 3, H, W)" : "(N, H, W, 3)") + " with N >= " +
                                 std::to_string(images.size());
    const bool ok = out.dtype().kind() == 'f' && out.dtype().itemsize() == 4 && out.ndim() == 4 &&
                    out.writeable() && (out.flags() & py::array::c_style) &&
                    out.shape(nchw ? 1 : 3) == 3 && out.shape(0) >= static_cast<py::ssize_t>(images.size());
    if (!ok) throw py::value_error("out: expected " + expected + ", got " + describe(out));
    vislint::PreprocessSpec spec;
    spec.out_h = static_cast<int>(out.shape(nchw ? 2 : 1));
    spec.out_w = static_cast<int>(out.shape(nchw ? 3 : 2));
    spec.crop = crop;
    spec.channels_first = nchw;
    spec.bgr = bgr;
    for (int c = 0; c < 3; ++c) {
        spec.mean[c] = mean[c].cast<float>();
        spec.std[c] = std_[c].cast<float>();
    }
    std::vector<carray<std::uint8_t>> held;
    const std::vector<vislint::ImageRef> refs = as_images(images, held);
    float* dst = static_cast<float*>(out.mutable_data());
    try {
        py::gil_scoped_release nogil;
        vislint::preprocess_images(refs.data(), refs.size(), spec, dst, threads);
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
}

py::tuple analyze_py(const py::list& images, int size, int threads, double weight_layout,
                     double weight_gradients, double weight_colour) {
    check_threads(threads);
    if (size != vislint::kTileSize)
        throw py::value_error("size: expected " + std::to_string(vislint::kTileSize) +
                              " (TILE_SIZE: the statistics, thumbnail and descriptor are defined "
                              "on tiles of that size), got " + std::to_string(size));
    vislint::DescriptorWeights w;
    w.layout = weight_layout;
    w.gradients = weight_gradients;
    w.colour = weight_colour;
    std::vector<carray<std::uint8_t>> held;
    const std::vector<vislint::ImageRef> refs = as_images(images, held);
    const auto n = static_cast<py::ssize_t>(refs.size());
    const py::ssize_t s = vislint::kTileSize;
    py::array_t<std::uint8_t> tiles({n, s, s, py::ssize_t{3}});
    py::array_t<float> stats(std::vector<py::ssize_t>{n, vislint::kNumStats});
    py::array_t<std::uint8_t> thumbs(std::vector<py::ssize_t>{n, vislint::kVerifySize,
                                                              vislint::kVerifySize});
    py::array_t<float> desc(std::vector<py::ssize_t>{n, vislint::kDescriptorDim});
    std::uint8_t* pt = tiles.mutable_data();
    float* ps = stats.mutable_data();
    std::uint8_t* ph = thumbs.mutable_data();
    float* pd = desc.mutable_data();
    {
        py::gil_scoped_release nogil;
        vislint::analyze_images(refs.data(), refs.size(), w, pt, ps, ph, pd, threads);
    }
    return py::make_tuple(tiles, stats, thumbs, desc);
}

// int array of shape (n,) with a given name.
carray<std::int32_t> as_sizes(const py::array& a, const std::string& name, std::size_t n) {
    auto out = convert<std::int32_t>(a, name, Kind::Integer, "integer array of shape (N,)");
    if (out.ndim() != 1 || static_cast<std::size_t>(out.shape(0)) != n)
        throw py::value_error(name + ": expected integer array of shape (" + std::to_string(n) +
                              ",) (one per tile), got " + describe(a));
    return out;
}

py::tuple rotation_features_py(const py::array& tiles, const py::array& widths,
                               const py::array& heights, int threads) {
    check_threads(threads);
    auto t = as_tiles(tiles);
    const auto n = static_cast<std::size_t>(t.shape(0));
    auto w = as_sizes(widths, "widths", n);
    auto h = as_sizes(heights, "heights", n);
    const auto np_ = static_cast<py::ssize_t>(n);
    py::array_t<float> retrieval(std::vector<py::ssize_t>{np_, vislint::kRotationDim});
    py::array_t<std::int8_t> polar(std::vector<py::ssize_t>{np_, vislint::kPolarRings, vislint::kPolarAngles});
    py::array_t<float> info(std::vector<py::ssize_t>{np_, vislint::kRotationInfo});
    const std::uint8_t* pt = t.data();
    const std::int32_t* pw = w.data();
    const std::int32_t* ph = h.data();
    float* pr = retrieval.mutable_data();
    std::int8_t* pp = polar.mutable_data();
    float* pi = info.mutable_data();
    {
        py::gil_scoped_release nogil;
        vislint::rotation_features_batch(pt, pw, ph, n, pr, pp, pi, threads);
    }
    return py::make_tuple(retrieval, polar, info);
}

py::tuple rotation_verify_py(const py::array& polar, const py::array& a, const py::array& b,
                             int threads) {
    check_threads(threads);
    const std::string expected = "int8 array of shape (N, 16, 128)";
    if (polar.ndim() != 3 || polar.shape(1) != vislint::kPolarRings ||
        polar.shape(2) != vislint::kPolarAngles || polar.dtype().kind() != 'i' ||
        polar.dtype().itemsize() != 1)
        throw py::value_error("polar: expected " + expected + ", got " + describe(polar));
    auto pg = carray<std::int8_t>::ensure(polar);
    auto ia = convert<std::int64_t>(a, "a", Kind::Integer, "integer array of shape (P,)");
    auto ib = convert<std::int64_t>(b, "b", Kind::Integer, "integer array of shape (P,)");
    if (ia.ndim() != 1 || ib.ndim() != 1 || ia.shape(0) != ib.shape(0))
        throw py::value_error("a, b: expected two integer arrays of the same shape (P,), got " +
                              describe(a) + " and " + describe(b));
    const auto n = static_cast<std::size_t>(pg.shape(0));
    const auto p = static_cast<std::size_t>(ia.shape(0));
    py::array_t<float> score(static_cast<py::ssize_t>(p));
    py::array_t<float> angle(static_cast<py::ssize_t>(p));
    py::array_t<bool> mirrored(static_cast<py::ssize_t>(p));
    const std::int8_t* pp = pg.data();
    const std::int64_t* pa = ia.data();
    const std::int64_t* pb = ib.data();
    float* ps = score.mutable_data();
    float* pn = angle.mutable_data();
    auto* pm = reinterpret_cast<std::uint8_t*>(mirrored.mutable_data());
    {
        py::gil_scoped_release nogil;
        vislint::rotation_verify(pp, n, pa, pb, p, ps, pn, pm, threads);
    }
    return py::make_tuple(score, angle, mirrored);
}

py::array_t<std::uint8_t> grey_thumbnails_py(const py::array& tiles, int threads) {
    check_threads(threads);
    auto t = as_tiles(tiles);
    const auto n = static_cast<std::size_t>(t.shape(0));
    py::array_t<std::uint8_t> out(std::vector<py::ssize_t>{static_cast<py::ssize_t>(n),
                                                           vislint::kVerifySize, vislint::kVerifySize});
    const std::uint8_t* src = t.data();
    std::uint8_t* dst = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        vislint::grey_thumbnails(src, n, dst, threads);
    }
    return out;
}

py::object aligned_pair_py(const py::array& a, const py::array& b) {
    const std::string expected = "uint8 array of shape (64, 64) from grey_thumbnails";
    for (const auto* x : {&a, &b})
        if (x->ndim() != 2 || x->shape(0) != vislint::kVerifySize ||
            x->shape(1) != vislint::kVerifySize || x->dtype().kind() != 'u' ||
            x->dtype().itemsize() != 1)
            throw py::value_error(std::string(x == &a ? "a" : "b") + ": expected " + expected +
                                  ", got " + describe(*x));
    auto ca = carray<std::uint8_t>::ensure(a), cb = carray<std::uint8_t>::ensure(b);
    const std::vector<py::ssize_t> shape{vislint::kVerifySize, vislint::kVerifySize};
    py::array_t<std::uint8_t> first(shape), second(shape);
    const std::uint8_t *pa = ca.data(), *pb = cb.data();
    std::uint8_t *pf = first.mutable_data(), *ps = second.mutable_data();
    bool ok;
    {
        py::gil_scoped_release nogil;
        ok = vislint::aligned_pair(pa, pb, pf, ps);
    }
    if (!ok) return py::none();
    return py::make_tuple(first, second);
}

py::dict verify_pairs_py(const py::array& thumbs, const py::array& a, const py::array& b,
                         int threads) {
    check_threads(threads);
    const std::string expected = "uint8 array of shape (N, 64, 64)";
    if (thumbs.ndim() != 3 || thumbs.shape(1) != vislint::kVerifySize ||
        thumbs.shape(2) != vislint::kVerifySize || thumbs.dtype().kind() != 'u' ||
        thumbs.dtype().itemsize() != 1)
        throw py::value_error("thumbs: expected " + expected + ", got " + describe(thumbs));
    auto th = carray<std::uint8_t>::ensure(thumbs);
    auto ia = convert<std::int64_t>(a, "a", Kind::Integer, "integer array of shape (P,)");
    auto ib = convert<std::int64_t>(b, "b", Kind::Integer, "integer array of shape (P,)");
    if (ia.ndim() != 1 || ib.ndim() != 1 || ia.shape(0) != ib.shape(0))
        throw py::value_error("a, b: expected two integer arrays of the same shape (P,), got " +
                              describe(a) + " and " + describe(b));
    const auto n = static_cast<std::size_t>(th.shape(0));
    const auto p = static_cast<std::size_t>(ia.shape(0));
    std::vector<vislint::PairEvidence> ev(p);
    const std::uint8_t* pt = th.data();
    const std::int64_t* pa = ia.data();
    const std::int64_t* pb = ib.data();
    {
        py::gil_scoped_release nogil;
        try {
            vislint::verify_pairs(pt, n, pa, pb, p, ev.data(), threads);
        } catch (const std::out_of_range& e) {
            py::gil_scoped_acquire gil;
            throw py::index_error(e.what());
        }
    }
    const auto P = static_cast<py::ssize_t>(p);
    py::array_t<float> best(P), med(P), p90(P), worst(P), corr(P), coarse(P), cover(P);
    py::array_t<bool> mir(P);
    py::array_t<float> affine(std::vector<py::ssize_t>{P, 6});
    auto* pm = reinterpret_cast<std::uint8_t*>(mir.mutable_data());
    for (std::size_t k = 0; k < p; ++k) {
        best.mutable_data()[k] = ev[k].residual_min;
        med.mutable_data()[k] = ev[k].residual_median;
        p90.mutable_data()[k] = ev[k].residual_p90;
        worst.mutable_data()[k] = ev[k].residual_max;
        corr.mutable_data()[k] = ev[k].correlation;
        coarse.mutable_data()[k] = ev[k].coarse;
        cover.mutable_data()[k] = ev[k].coverage;
        pm[k] = ev[k].mirrored;
        std::copy(ev[k].affine, ev[k].affine + 6, affine.mutable_data() + 6 * k);
    }
    py::dict out;
    out["residual_min"] = best;
    out["residual_median"] = med;
    out["residual_p90"] = p90;
    out["residual_max"] = worst;
    out["correlation"] = corr;
    out["coarse"] = coarse;
    out["coverage"] = cover;
    out["mirrored"] = mir;
    out["affine"] = affine;
    return out;
}

}  // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() =
        "vislint native core: per-image statistics, the built-in image descriptor,\n"
        "rotated-copy and near-duplicate verification, and graph loops over\n"
        "nearest-neighbour results.\n"
        "\n"
        "Images come in as `tiles`: uint8 arrays of shape (N, 128, 128, 3), RGB, each\n"
        "the whole image resized to TILE_SIZE x TILE_SIZE (aspect ratio ignored).\n"
        "Every function takes and returns NumPy arrays, releases the GIL while it\n"
        "computes, and raises ValueError on a wrong dtype or shape. `threads=0`\n"
        "uses all hardware threads; results are bit-identical for any thread count.\n"
        "Luminance everywhere is Y = 0.299 R + 0.587 G + 0.114 B in 0..255.";

    m.attr("TILE_SIZE") = vislint::kTileSize;
    py::list names;
    for (const auto& s : vislint::stat_names()) names.append(s);
    m.attr("STAT_NAMES") = names;
    m.attr("DESCRIPTOR_DIM") = vislint::kDescriptorDim;
    m.attr("ROTATION_DIM") = vislint::kRotationDim;
    m.def("rotation_features", &rotation_features_py, py::arg("tiles"), py::arg("widths"),
          py::arg("heights"), py::arg("threads") = 0,
          R"doc(Rotation-invariant description of images, for finding rotated copies.

Each image is described on the disk of its content (a copy rotated with black
padding has the same content disk as its original): see rotation.hpp.

Args:
    tiles: uint8[N, 128, 128, 3] RGB tiles.
    widths, heights: int[N], the images' sizes in px (only the aspect ratio is
        used, to undo the tile's squashing).
    threads: worker threads, 0 (default) = all hardware threads.

Returns:
    (retrieval, polar, info):
    retrieval: float32[N, ROTATION_DIM] (160) raw vector, invariant to rotation
        and mirroring: for luminance and band-pass luminance on 8 rings, the ring
        means and the magnitudes of the angular Fourier terms 1..8, then the
        chroma ring means. Centre and L2-normalise over the data set before
        comparing with cosine similarity.
    polar: int8[N, 16, 128], the band-pass luminance on 16 rings x 128 angles,
        quantised with a per-image scale: the input of rotation_verify.
    info: float32[N, 2]: content radius / canvas inradius (below 1 on a padded
        canvas), and the band-pass standard deviation in grey levels (texture;
        below 1 the verification has nothing to go on).
)doc");
    m.def("rotation_verify", &rotation_verify_py, py::arg("polar"), py::arg("a"), py::arg("b"),
          py::arg("threads") = 0,
          R"doc(Verify candidate rotated copies: the best correlation over rotations.

Args:
    polar: int8[N, 16, 128] from rotation_features.
    a, b: int[P] row indices of the pairs to compare.
    threads: worker threads, 0 (default) = all hardware threads.

Returns:
    (score, angle, mirrored): float32[P] normalised cross-correlation of the two
    band-pass polar grids (ring weight ~ radius), maximised over 256 rotation
    angles and the mirror, in [-1, 1] (1 = same structure); float32[P] the
    rotation of b onto a in degrees [0, 360); bool[P] whether b was mirrored.
)doc");

    m.def("image_stats", &image_stats_py, py::arg("tiles"), py::arg("threads") = 0,
          R"doc(Per-image quality statistics of tiles.

Args:
    tiles: uint8[N, 128, 128, 3] RGB tiles.
    threads: worker threads, 0 (default) = all hardware threads.

Returns:
    float32[N, len(STAT_NAMES)], columns in STAT_NAMES order, on luminance
    Y = 0.299 R + 0.587 G + 0.114 B (grey levels 0..255):

    - blur_laplacian_var: variance of the 4-neighbour Laplacian
      [0,1,0; 1,-4,1; 0,1,0] of Y over the interior (1-px border skipped),
      grey levels squared. Low = blurry.
    - lum_mean, lum_std: mean and (population) standard deviation of Y.
    - lum_p01, lum_p05, lum_p50, lum_p95, lum_p99: percentiles of a 256-bin
      histogram of round(Y) (half rounded up): smallest v whose cumulative
      count >= p * 16384.
    - entropy: Shannon entropy of that histogram, bits (0..8).
    - colourfulness: Hasler & Suesstrunk (2003), rg = R-G, yb = (R+G)/2 - B:
      sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2).
    - channel_diff: mean of max(|R-G|, |G-B|, |R-B|) (0 for grey images).
    - detail_2, detail_4, detail_8, detail_16, detail_coarse: how the variance of the
      64 px grey thumbnail (grey_thumbnails) splits over scales, shares summing to 1: the
      details of 2, 4, 8 and 16 thumbnail pixels (differences from 2x2 box means at each
      level of a box pyramid) and the 4x4 level's own variance; 0.1 grey levels squared is
      added to each, so a flat image has five shares of 0.2. Noise puts most of it in
      detail_2, a smooth photograph in the coarse levels.
)doc");

    m.attr("VERIFY_SIZE") = vislint::kVerifySize;
    m.def("grey_thumbnails", &grey_thumbnails_py, py::arg("tiles"), py::arg("threads") = 0,
          R"doc(The grey thumbnails that near-duplicate verification compares.

Args:
    tiles: uint8[N, 128, 128, 3] RGB tiles.
    threads: worker threads, 0 (default) = all hardware threads.

Returns:
    uint8[N, 64, 64]: 2x2 means of the luminance, rounded half up.
)doc");
    m.def("aligned_pair", &aligned_pair_py, py::arg("a"), py::arg("b"),
          R"doc(Two grey thumbnails aligned as verify_pairs aligns them, to look at.

Args:
    a, b: uint8[64, 64] from grey_thumbnails.

Returns:
    (first, second): uint8[64, 64] each, a's and b's pixels on the grid of the wider view
    (b mirrored if the pair is; 0 where the warp leaves b), smoothed as the verification
    sees them; or None when the two are nothing alike even coarsely.
)doc");

    m.def("verify_pairs", &verify_pairs_py, py::arg("thumbs"), py::arg("a"), py::arg("b"),
          py::arg("threads") = 0,
          R"doc(Verify candidate copies: align each pair and measure what differs (verify.hpp).

Args:
    thumbs: uint8[N, 64, 64] from grey_thumbnails.
    a, b: int[P] rows of the pairs.
    threads: worker threads, 0 (default) = all hardware threads.

Returns:
    dict of arrays of length P: residual_min, residual_median, residual_p90,
    residual_max (RMS of the residual per cell of a 4x4 grid, over std(a) + 4, after
    aligning b onto a and mapping its grey levels onto a's: the best, median,
    second-worst and worst cell; 9 when under half of a falls inside b), correlation (of a and
    aligned b), coverage (share of a inside b), coarse (the correlation after the
    16 px alignment; under 0.95 nothing else is measured), mirrored (bool: b was flipped),
    affine (float32[P, 6]: A00 A01 A10 A11 tx ty in 64-px units, x_b =
    A (x_a - c) + c + t with c the centre).

Raises:
    IndexError for a row outside [0, N).
)doc");
    m.def("descriptor", &descriptor_py, py::arg("tiles"), py::arg("threads") = 0,
          py::kw_only(), py::arg("weight_layout") = vislint::DescriptorWeights{}.layout,
          py::arg("weight_gradients") = vislint::DescriptorWeights{}.gradients,
          py::arg("weight_colour") = vislint::DescriptorWeights{}.colour,
          R"doc(Built-in (model-free) image descriptor for near-duplicate search.

Compare with cosine similarity (= dot product: rows are unit norm). Close for
re-encoded, resized, slightly cropped, mirrored and brightness/contrast-shifted
copies; the output is exactly identical for a tile and its left-right mirror.

Args:
    tiles: uint8[N, 128, 128, 3] RGB tiles.
    threads: worker threads, 0 (default) = all hardware threads.
    weight_layout: weight of block A (default 0.4).
    weight_gradients: weight of block B (default 1.0).
    weight_colour: weight of block C (default 0.4). Weights must be >= 0.
        Only their ratios matter. Defaults measured on 3,999 natural photos:
        at a cosine threshold keeping 99% of 5%-cropped copies, 2.7% of the
        images had an unrelated neighbour above it (24% with 1.0/1.0/0.5).

Returns:
    float32[N, DESCRIPTOR_DIM] (448), L2-normalised rows; a flat grey tile
    gives the zero vector. Built from three blocks computed on the tile (v)
    and on its mirror (v_f), each emitted as [(v+v_f)/2, |v-v_f|/2],
    L2-normalised, times its weight:

    - A layout (2x64): 8x8 box means of luminance normalised to zero mean,
      unit std (std floored at 1 grey level).
    - B gradients (2x128): normalised luminance at 32x32; central-difference
      gradient magnitude in 8 unsigned orientation bins x 4x4 cells (linear /
      bilinear soft binning), L2-normalised, clipped at 0.2, re-normalised.
    - C colour (2x32): per cell of a 4x4 grid, means of (R-G)/(R+G+B+3)
      and (R+G-2B)/(R+G+B+3); divided by max(norm, 0.3) instead of its norm
      so a nearly grey image's chroma noise stays small.

    Column order: A.s A.a B.s B.a C.s C.a.
)doc");

    py::class_<vislint::KnnCandidates>(m, "KnnCandidates", R"doc(The k best candidates of
every one of n unit vectors, from the upper part of their squared L2 distance matrix
(similarity = 1 - d / 2), given block by block: an exact kNN search for all the vectors
at half the matrix products.

Candidates rank by similarity rounded to 2**-20, then by the smaller index, so exact
copies tie exactly whatever the last bits of the products, and the result does not depend
on the blocks or the thread count. Each vector is its own candidate.
)doc")
        .def(py::init<std::size_t, std::size_t>(), py::arg("n"), py::arg("k"),
             "n vectors, k candidates each (k >= 1).")
        .def("add_block", &knn_add_block_py, py::arg("dist"), py::arg("row0"),
             py::arg("threads") = 0,
             R"doc(Merge one block of squared L2 distances.

Args:
    dist: float32[rows, n - row0]: the distances of vectors row0 .. row0 + rows - 1 to
        vectors row0 .. n - 1. Each value counts for its row and, right of the block's
        square (columns from row0 + rows on), for its column: give blocks that cover
        the rows 0 .. n - 1 once each, in any order.
    row0: the block's first row.
    threads: worker threads, 0 (default) = all hardware threads.
)doc")
        .def("indices", &knn_indices_py,
             "int64[n, k]: every vector's candidates, in no particular order (-1 where it "
             "has fewer than k).");

    m.def("components", &components_py, py::arg("n"), py::arg("i"), py::arg("j"),
          R"doc(Connected components of an undirected graph.

Args:
    n: number of nodes (>= 0).
    i: int64[E], edge sources in [0, n).
    j: int64[E], edge targets in [0, n).

Returns:
    int64[n]: for every node, the smallest node index in its component
    (isolated nodes get their own index).
)doc");

    m.def("pair_dots", &pair_dots_py, py::arg("a"), py::arg("ia"), py::arg("b"), py::arg("ib"),
          py::arg("threads") = 0,
          R"doc(Inner products of pairs of rows: out[p] = a[ia[p]] . b[ib[p]].

Each product is summed in one fixed order, so the result does not depend on the
thread count (the exact re-ranking of kNN candidates; the GIL is released).

Args:
    a, b: float32[rows, d] (other float types are converted), the same d.
    ia, ib: int[P] row indices into a and b (a row out of range: ValueError).
    threads: worker threads, 0 (default) = all hardware threads.

Returns:
    float32[P].
)doc");
    m.def("center_groups", &center_groups_py, py::arg("neighbors"), py::arg("sims"),
          py::arg("threshold"), py::arg("order"),
          R"doc(Non-chaining grouping around centres (sequential).

An undirected edge (r, v) exists when v is in neighbors[r] or r in
neighbors[v] with similarity >= threshold (compared in float32); adjacency
lists are sorted by node index. Nodes are visited in `order`; a node not yet
assigned becomes a centre and every not-yet-assigned node adjacent to it joins
its group. Members never recruit, so a chain a-b-c-d-e does not become one
group.

Args:
    neighbors: int64[N, k], k nearest neighbours of each row (-1 = none;
        the row itself is ignored).
    sims: float32[N, k], cosine similarity of each neighbour.
    threshold: minimum similarity of an edge.
    order: int64[N], a permutation of 0..N-1 (visit order).

Returns:
    int64[N]: the centre's index for every member of a group (centre
    included); -1 for nodes that end up alone.
)doc");

    m.def("label_tally", &label_tally_py, py::arg("neighbors"), py::arg("sims"),
          py::arg("labels"), py::arg("n_labels"), py::arg("min_sim") = 0.0,
          py::arg("threads") = 0,
          R"doc(Similarity-weighted vote of each node's neighbours over labels.

For row r, every neighbour v != r (v >= 0) with labels[v] >= 0 and
sims[r, j] >= min_sim (float32 comparison) adds w = max(sim, 0) to its label.

Args:
    neighbors: int64[N, k], neighbour indices in [0, N) (-1 = none).
    sims: float32[N, k], similarities.
    labels: int32[N], label of each node in [0, n_labels); negative =
        unlabelled.
    n_labels: number of labels (>= 0).
    min_sim: minimum similarity of a counted neighbour (default 0.0).
    threads: worker threads, 0 (default) = all hardware threads.

Returns:
    (suggested int32[N], agreement float32[N], support float32[N]):
    support = total weight; suggested = label with the largest weight
    (ties -> smallest label; -1 when support == 0); agreement = weight of
    labels[r] / support (NaN when labels[r] < 0 or support == 0).
)doc");

    m.def("have_jpeg", &vislint::have_jpeg,
          "True when this build decodes plain JPEGs itself (decode_jpeg; built with libjpeg).");
    m.def("decode_jpeg", &decode_jpeg_py, py::arg("data"), py::arg("draft_to") = 0,
          py::arg("min_side") = 0, py::arg("max_pixels") = 178956970LL,
          R"doc(Decode a plain JPEG through libjpeg(-turbo), as Pillow would; None otherwise.

The fast path for the common case (see have_jpeg(): built with libjpeg). Decodes 8-bit
JPEGs with 1 or 3 components to RGB with Pillow's settings (integer IDCT, fancy
upsampling), and returns None for anything else -- CMYK, 12-bit, MPO, any libjpeg
warning (truncated or damaged data), EXIF orientation that is not plain, a header
size outside [min_side, max_pixels] -- so that Pillow decodes it and says why.

Args:
    data: the file's bytes.
    draft_to: decode at scale 1/s (s in 8, 4, 2, 1), the largest with
        s <= min(width // draft_to, height // draft_to), like Pillow's draft mode;
        0 (default) = full size.
    min_side, max_pixels: header bounds, in pixels.

Returns:
    None, or (uint8[h, w, 3] pixels before EXIF orientation, header width,
    header height, EXIF orientation 1-8, Pillow's mode name "RGB" or "L").
)doc");

    m.def("tiles_from_images", &tiles_from_images_py, py::arg("images"),
          py::arg("size") = vislint::kTileSize, py::arg("threads") = 0,
          R"doc(Resample whole RGB images to square tiles (aspect ratio ignored).

Per axis: area averaging (box filter with fractional coverage) when shrinking,
linear interpolation between pixel centres when enlarging; rounded to uint8.

Args:
    images: list of uint8[H, W, 3] (RGB) or uint8[H, W, 4] (RGBX: the 4th byte is
        ignored) arrays, any sizes.
    size: tile side in pixels (default TILE_SIZE = 128).
    threads: worker threads, 0 (default) = all hardware threads.

Returns:
    uint8[N, size, size, 3].
)doc");

    m.def("thumbnail", &thumbnail_py, py::arg("image"), py::arg("max_side") = 160,
          R"doc(Shrink one RGB image so that its longer side is at most max_side pixels.

The aspect ratio is kept (each side rounded to the nearest pixel, at least 1);
an image already within max_side keeps its size (never enlarged). Area
averaging (box filter with fractional coverage), as tiles_from_images. The GIL
is released while resizing, so threads can make thumbnails in parallel.

Args:
    image: uint8[H, W, 3] (RGB) or uint8[H, W, 4] (RGBX: the 4th byte is ignored).
    max_side: longest side of the thumbnail in pixels, >= 1 (default 160).

Returns:
    uint8[h, w, 3] with max(h, w) == min(max(H, W), max_side).
)doc");

    m.def("preprocess", &preprocess_py, py::arg("images"), py::arg("out"), py::kw_only(),
          py::arg("layout") = "NCHW", py::arg("crop") = 1.0,
          py::arg("mean") = py::make_tuple(0.0, 0.0, 0.0),
          py::arg("std") = py::make_tuple(1.0, 1.0, 1.0), py::arg("bgr") = false,
          py::arg("threads") = 0,
          R"doc(Model inputs for an ONNX image model, written into a preallocated batch.

Per image: the centre window (see crop) is resampled to the batch's H x W as in
tiles_from_images (area averaging when shrinking, linear when enlarging,
rounded to uint8), then each value v becomes (v / 255 - mean[c]) / std[c].

Args:
    images: list of uint8[H, W, 3] (RGB) or uint8[H, W, 4] (RGBX: the 4th byte is
        ignored) arrays, any sizes, at most N of them.
    out: float32 C-contiguous batch, (N, 3, H, W) for NCHW or (N, H, W, 3) for NHWC;
        rows 0 .. len(images) - 1 are overwritten, the rest left as they are.
    layout: "NCHW" (default) or "NHWC".
    crop: the centre window is the largest window with the aspect ratio W : H,
        scaled by crop (sides rounded to whole pixels): 1.0 (default) keeps the
        whole shorter side (resize the shorter side, then centre crop), 0.875
        is the common "resize to 256, crop 224"; 0 takes the whole image and
        ignores its aspect ratio.
    mean, std: 3 values each, R G B, in units of v / 255 (default 0 and 1;
        ImageNet: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)).
    bgr: write the channels in B, G, R order (default False: R, G, B).
    threads: worker threads over images, 0 (default) = all hardware threads.
)doc");

    m.def("analyze", &analyze_py, py::arg("images"), py::arg("size") = vislint::kTileSize,
          py::arg("threads") = 0, py::kw_only(),
          py::arg("weight_layout") = vislint::DescriptorWeights{}.layout,
          py::arg("weight_gradients") = vislint::DescriptorWeights{}.gradients,
          py::arg("weight_colour") = vislint::DescriptorWeights{}.colour,
          R"doc(Everything per image in one call: tile, statistics, thumbnail, descriptor.

Resizes each image to its tile and computes the statistics, grey thumbnail
and descriptor from the tile in one pass over its pixels. The results are
identical, bit for bit, to tiles_from_images followed by image_stats,
grey_thumbnails and descriptor on the tiles, for any thread count.

Args:
    images: list of uint8[H, W, 3] (RGB) or uint8[H, W, 4] (RGBX: the 4th byte is
        ignored) arrays, any sizes.
    size: tile side; must be TILE_SIZE (128), the size the statistics,
        thumbnail and descriptor are defined on.
    threads: worker threads over images, 0 (default) = all hardware threads.
    weight_layout, weight_gradients, weight_colour: descriptor block weights,
        as in descriptor().

Returns:
    (tiles uint8[N, 128, 128, 3], stats float32[N, len(STAT_NAMES)],
    thumbs uint8[N, 64, 64], descriptors float32[N, DESCRIPTOR_DIM]).
)doc");
}
