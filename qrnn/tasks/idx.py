"""A reader for IDX files, the format of MNIST and its drop-in replacements.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions d),
d big-endian uint32 sizes, then the array in C order, big-endian. Files may be gzip-compressed;
compression is recognised by content, not by name.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from qrnn.errors import QRNNError

# IDX type code -> numpy dtype (big-endian, as stored)
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a native-endian numpy array.

    Args:
        path: the file.

    Returns:
        The array, with the shape and element type the header declares.

    Raises:
        QRNNError: the file cannot be read, is not IDX (bad magic number), or is truncated or
            longer than its header says.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
        if data[:2] == GZIP_MAGIC:
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise QRNNError(f"cannot read IDX file {path}: {exc}") from exc
    if len(data) < 4:
        raise QRNNError(f"IDX file {path} is truncated: {len(data)} bytes, not even a header")
    zeros, code, ndim = data[:2], data[2], data[3]
    if zeros != b"\x00\x00" or code not in IDX_DTYPES or ndim == 0:
        raise QRNNError(
            f"{path} is not an IDX file: bad magic number 0x{data[:4].hex()}; expected "
            f"0x0000TTDD with type code TT in {{{', '.join(f'{c:02x}' for c in IDX_DTYPES)}}} "
            f"and DD >= 1 dimensions"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise QRNNError(
            f"IDX file {path} is truncated: its header needs {header} bytes for {ndim} "
            f"dimensions, the file has {len(data)}"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    got = len(data) - header
    if got != expected:
        problem = "truncated" if got < expected else "longer than its header says"
        raise QRNNError(
            f"IDX file {path} is {problem}: shape {shape} of {dtype.newbyteorder('=')} needs "
            f"{expected} bytes of data, the file has {got}"
        )
    # astype copies into a writable, native-endian array
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(
        dtype.newbyteorder("=")
    )
