"""NumPy references of the C++ core's resampling, shared by the native and ONNX tests."""
import numpy as np


def resize_reference(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Area averaging when shrinking, linear between pixel centres when enlarging, in float64,
    before rounding: float64[out_h, out_w, 3]."""
    def weights(n_in: int, n_out: int) -> np.ndarray:
        W = np.zeros((n_out, n_in))
        scale = n_in / n_out
        for o in range(n_out):
            if scale >= 1:
                a, b = o * scale, (o + 1) * scale
                for i in range(int(np.floor(a)), min(n_in, int(np.ceil(b)))):
                    W[o, i] = (min(b, i + 1) - max(a, i)) / scale
            else:
                x = min(max((o + 0.5) * scale - 0.5, 0.0), n_in - 1.0)
                i0 = int(x)
                i1 = min(i0 + 1, n_in - 1)
                W[o, i0] += 1 - (x - i0)
                W[o, i1] += x - i0
        return W
    img = image[..., :3].astype(np.float64)
    rows = np.tensordot(weights(img.shape[0], out_h), img, axes=(1, 0))
    return np.tensordot(rows, weights(img.shape[1], out_w), axes=(1, 1)).transpose(0, 2, 1)
