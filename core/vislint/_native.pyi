"""
vislint native core: per-image statistics, the built-in image descriptor,
rotated-copy and near-duplicate verification, and graph loops over
nearest-neighbour results.

Images come in as `tiles`: uint8 arrays of shape (N, 128, 128, 3), RGB, each
the whole image resized to TILE_SIZE x TILE_SIZE (aspect ratio ignored).
Every function takes and returns NumPy arrays, releases the GIL while it
computes, and raises ValueError on a wrong dtype or shape. `threads=0`
uses all hardware threads; results are bit-identical for any thread count.
Luminance everywhere is Y = 0.299 R + 0.587 G + 0.114 B in 0..255.
"""
from __future__ import annotations
import collections.abc
import numpy
import numpy.typing
import typing
__all__: list[str] = ['DESCRIPTOR_DIM', 'KnnCandidates', 'ROTATION_DIM', 'STAT_NAMES', 'TILE_SIZE', 'VERIFY_SIZE', 'aligned_pair', 'analyze', 'center_groups', 'components', 'decode_jpeg', 'descriptor', 'grey_thumbnails', 'have_jpeg', 'image_stats', 'label_tally', 'pair_dots', 'preprocess', 'rotation_features', 'rotation_verify', 'thumbnail', 'tiles_from_images', 'verify_pairs']
class KnnCandidates:
    """
    The k best candidates of
    every one of n unit vectors, from the upper part of their squared L2 distance matrix
    (similarity = 1 - d / 2), given block by block: an exact kNN search for all the vectors
    at half the matrix products.
    
    Candidates rank by similarity rounded to 2**-20, then by the smaller index, so exact
    copies tie exactly whatever the last bits of the products, and the result does not depend
    on the blocks or the thread count. Each vector is its own candidate.
    """
    def __init__(self, n: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex) -> None:
        """
        n vectors, k candidates each (k >= 1).
        """
    def add_block(self, dist: numpy.ndarray, row0: typing.SupportsInt | typing.SupportsIndex, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        """
        Merge one block of squared L2 distances.
        
        Args:
            dist: float32[rows, n - row0]: the distances of vectors row0 .. row0 + rows - 1 to
                vectors row0 .. n - 1. Each value counts for its row and, right of the block's
                square (columns from row0 + rows on), for its column: give blocks that cover
                the rows 0 .. n - 1 once each, in any order.
            row0: the block's first row.
            threads: worker threads, 0 (default) = all hardware threads.
        """
    def indices(self) -> numpy.typing.NDArray[numpy.int64]:
        """
        int64[n, k]: every vector's candidates, in no particular order (-1 where it has fewer than k).
        """
def aligned_pair(a: numpy.ndarray, b: numpy.ndarray) -> typing.Any:
    """
    Two grey thumbnails aligned as verify_pairs aligns them, to look at.
    
    Args:
        a, b: uint8[64, 64] from grey_thumbnails.
    
    Returns:
        (first, second): uint8[64, 64] each, a's and b's pixels on the grid of the wider view
        (b mirrored if the pair is; 0 where the warp leaves b), smoothed as the verification
        sees them; or None when the two are nothing alike even coarsely.
    """
def analyze(images: list, size: typing.SupportsInt | typing.SupportsIndex = 128, threads: typing.SupportsInt | typing.SupportsIndex = 0, *, weight_layout: typing.SupportsFloat | typing.SupportsIndex = 0.4, weight_gradients: typing.SupportsFloat | typing.SupportsIndex = 1.0, weight_colour: typing.SupportsFloat | typing.SupportsIndex = 0.4) -> tuple:
    """
    Everything per image in one call: tile, statistics, thumbnail, descriptor.
    
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
    """
def center_groups(neighbors: numpy.ndarray, sims: numpy.ndarray, threshold: typing.SupportsFloat | typing.SupportsIndex, order: numpy.ndarray) -> numpy.typing.NDArray[numpy.int64]:
    """
    Non-chaining grouping around centres (sequential).
    
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
    """
def components(n: typing.SupportsInt | typing.SupportsIndex, i: numpy.ndarray, j: numpy.ndarray) -> numpy.typing.NDArray[numpy.int64]:
    """
    Connected components of an undirected graph.
    
    Args:
        n: number of nodes (>= 0).
        i: int64[E], edge sources in [0, n).
        j: int64[E], edge targets in [0, n).
    
    Returns:
        int64[n]: for every node, the smallest node index in its component
        (isolated nodes get their own index).
    """
def decode_jpeg(data: bytes, draft_to: typing.SupportsInt | typing.SupportsIndex = 0, min_side: typing.SupportsInt | typing.SupportsIndex = 0, max_pixels: typing.SupportsInt | typing.SupportsIndex = 178956970) -> typing.Any:
    """
    Decode a plain JPEG through libjpeg(-turbo), as Pillow would; None otherwise.
    
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
    """
def descriptor(tiles: numpy.ndarray, threads: typing.SupportsInt | typing.SupportsIndex = 0, *, weight_layout: typing.SupportsFloat | typing.SupportsIndex = 0.4, weight_gradients: typing.SupportsFloat | typing.SupportsIndex = 1.0, weight_colour: typing.SupportsFloat | typing.SupportsIndex = 0.4) -> numpy.typing.NDArray[numpy.float32]:
    """
    Built-in (model-free) image descriptor for near-duplicate search.
    
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
    """
def grey_thumbnails(tiles: numpy.ndarray, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> numpy.typing.NDArray[numpy.uint8]:
    """
    The grey thumbnails that near-duplicate verification compares.
    
    Args:
        tiles: uint8[N, 128, 128, 3] RGB tiles.
        threads: worker threads, 0 (default) = all hardware threads.
    
    Returns:
        uint8[N, 64, 64]: 2x2 means of the luminance, rounded half up.
    """
def have_jpeg() -> bool:
    """
    True when this build decodes plain JPEGs itself (decode_jpeg; built with libjpeg).
    """
def image_stats(tiles: numpy.ndarray, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> numpy.typing.NDArray[numpy.float32]:
    """
    Per-image quality statistics of tiles.
    
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
    """
def label_tally(neighbors: numpy.ndarray, sims: numpy.ndarray, labels: numpy.ndarray, n_labels: typing.SupportsInt | typing.SupportsIndex, min_sim: typing.SupportsFloat | typing.SupportsIndex = 0.0, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> tuple:
    """
    Similarity-weighted vote of each node's neighbours over labels.
    
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
    """
def pair_dots(a: numpy.ndarray, ia: numpy.ndarray, b: numpy.ndarray, ib: numpy.ndarray, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> numpy.typing.NDArray[numpy.float32]:
    """
    Inner products of pairs of rows: out[p] = a[ia[p]] . b[ib[p]].
    
    Each product is summed in one fixed order, so the result does not depend on the
    thread count (the exact re-ranking of kNN candidates; the GIL is released).
    
    Args:
        a, b: float32[rows, d] (other float types are converted), the same d.
        ia, ib: int[P] row indices into a and b (a row out of range: ValueError).
        threads: worker threads, 0 (default) = all hardware threads.
    
    Returns:
        float32[P].
    """
def preprocess(images: list, out: numpy.ndarray, *, layout: str = 'NCHW', crop: typing.SupportsFloat | typing.SupportsIndex = 1.0, mean: collections.abc.Sequence = (0.0, 0.0, 0.0), std: collections.abc.Sequence = (1.0, 1.0, 1.0), bgr: bool = False, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
    """
    Model inputs for an ONNX image model, written into a preallocated batch.
    
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
    """
def rotation_features(tiles: numpy.ndarray, widths: numpy.ndarray, heights: numpy.ndarray, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> tuple:
    """
    Rotation-invariant description of images, for finding rotated copies.
    
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
    """
def rotation_verify(polar: numpy.ndarray, a: numpy.ndarray, b: numpy.ndarray, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> tuple:
    """
    Verify candidate rotated copies: the best correlation over rotations.
    
    Args:
        polar: int8[N, 16, 128] from rotation_features.
        a, b: int[P] row indices of the pairs to compare.
        threads: worker threads, 0 (default) = all hardware threads.
    
    Returns:
        (score, angle, mirrored): float32[P] normalised cross-correlation of the two
        band-pass polar grids (ring weight ~ radius), maximised over 256 rotation
        angles and the mirror, in [-1, 1] (1 = same structure); float32[P] the
        rotation of b onto a in degrees [0, 360); bool[P] whether b was mirrored.
    """
def thumbnail(image: numpy.ndarray, max_side: typing.SupportsInt | typing.SupportsIndex = 160) -> numpy.typing.NDArray[numpy.uint8]:
    """
    Shrink one RGB image so that its longer side is at most max_side pixels.
    
    The aspect ratio is kept (each side rounded to the nearest pixel, at least 1);
    an image already within max_side keeps its size (never enlarged). Area
    averaging (box filter with fractional coverage), as tiles_from_images. The GIL
    is released while resizing, so threads can make thumbnails in parallel.
    
    Args:
        image: uint8[H, W, 3] (RGB) or uint8[H, W, 4] (RGBX: the 4th byte is ignored).
        max_side: longest side of the thumbnail in pixels, >= 1 (default 160).
    
    Returns:
        uint8[h, w, 3] with max(h, w) == min(max(H, W), max_side).
    """
def tiles_from_images(images: list, size: typing.SupportsInt | typing.SupportsIndex = 128, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> numpy.typing.NDArray[numpy.uint8]:
    """
    Resample whole RGB images to square tiles (aspect ratio ignored).
    
    Per axis: area averaging (box filter with fractional coverage) when shrinking,
    linear interpolation between pixel centres when enlarging; rounded to uint8.
    
    Args:
        images: list of uint8[H, W, 3] (RGB) or uint8[H, W, 4] (RGBX: the 4th byte is
            ignored) arrays, any sizes.
        size: tile side in pixels (default TILE_SIZE = 128).
        threads: worker threads, 0 (default) = all hardware threads.
    
    Returns:
        uint8[N, size, size, 3].
    """
def verify_pairs(thumbs: numpy.ndarray, a: numpy.ndarray, b: numpy.ndarray, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> dict:
    """
    Verify candidate copies: align each pair and measure what differs (verify.hpp).
    
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
    """
DESCRIPTOR_DIM: int = 448
ROTATION_DIM: int = 160
STAT_NAMES: list = ['blur_laplacian_var', 'lum_mean', 'lum_std', 'lum_p01', 'lum_p05', 'lum_p50', 'lum_p95', 'lum_p99', 'entropy', 'colourfulness', 'channel_diff', 'detail_2', 'detail_4', 'detail_8', 'detail_16', 'detail_coarse']
TILE_SIZE: int = 128
VERIFY_SIZE: int = 64
