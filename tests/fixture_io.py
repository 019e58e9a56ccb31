"""Writer of the binary fixtures read by tests/fixture.c.

Layout, little-endian: b"SNFX", u32 version (1), u32 count, then per tensor:
u32 name length, name (utf-8), u32 dtype (0 f32, 1 i32, 2 f64), u32 ndim, u32 dims, data.
Tensors are written in insertion order, so the same inputs give the same bytes.
"""
import struct

import numpy as np

_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.int32): 1, np.dtype(np.float64): 2}


class Fixture:
    def __init__(self):
        self.items = []

    def add(self, name, array, dtype=None):
        if hasattr(array, "detach"):
            array = array.detach().cpu().numpy()
        # a copy: .numpy() shares memory with the tensor, and a tensor that is updated in
        # place after add() (running statistics, optimizer steps) must keep the added value
        a = np.array(array, dtype=dtype, order="C", copy=True)
        if a.dtype == np.float64 and dtype is None:
            a = a.astype(np.float32)
        if a.dtype == np.int64:
            a = a.astype(np.int32)
        if a.dtype not in _DTYPES:
            raise TypeError(f"{name}: unsupported dtype {a.dtype}")
        self.items.append((name, a))

    def add_int(self, name, value):
        self.add(name, np.array([value], dtype=np.int32))

    def write(self, path):
        with open(path, "wb") as f:
            f.write(b"SNFX" + struct.pack("<II", 1, len(self.items)))
            for name, a in self.items:
                nb = name.encode()
                f.write(struct.pack("<I", len(nb)) + nb)
                f.write(struct.pack("<II", _DTYPES[a.dtype], a.ndim))
                f.write(struct.pack(f"<{a.ndim}I", *a.shape))
                f.write(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
