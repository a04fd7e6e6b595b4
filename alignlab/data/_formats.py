"""The two on-disk formats: IDX (MNIST, Fashion-MNIST) and CIFAR-10's python pickles.

Parsers take bytes and return numpy arrays; they check the format strictly (a file of
the wrong size or type is an error, never silently reshaped) and know nothing about
where files live.
"""

from __future__ import annotations

import io
import pickle
import struct

import numpy as np

from ._files import DataFormatError

__all__ = ["parse_cifar_batch", "parse_idx"]

# IDX type codes (third magic byte) -> numpy dtype; multi-byte types are big-endian.
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data: bytes, *, what: str = "IDX data") -> np.ndarray:
    """Decode one IDX file (already decompressed).

    Layout: two zero bytes, a type code, the number of dimensions ``d``; then ``d``
    big-endian uint32 sizes; then the values, big-endian, C order. ``what`` names the
    file in error messages.

    Returns
    -------
    numpy.ndarray
        Shape = the sizes in the header; native byte order.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataFormatError(f"{what} is not an IDX file (magic bytes {data[:4].hex()}).")
    dtype, ndim = _IDX_TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFormatError(f"{what}: IDX header cut short ({len(data)} bytes).")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    count = int(np.prod(dims, dtype=np.int64))
    if len(data) != header + count * dtype.itemsize:
        raise DataFormatError(
            f"{what}: IDX header says shape {dims} ({header + count * dtype.itemsize} bytes), "
            f"the file has {len(data)} bytes.")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings and numpy arrays, and refuses anything else: a
    pickle can run arbitrary code, and a CIFAR batch needs nothing more than this."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def parse_cifar_batch(data: bytes, *, what: str = "CIFAR batch") -> tuple[np.ndarray, np.ndarray]:
    """Decode one CIFAR-10 python batch (``data_batch_1`` ... ``test_batch``).

    The file is a pickled dict with ``data`` (uint8, ``(N, 3072)``: 1024 red, then green,
    then blue values per image, rows top to bottom) and ``labels`` (N ints). Keys may be
    bytes (the original python-2 pickles) or str.

    Returns
    -------
    images : numpy.ndarray
        uint8, shape ``(N, 3, 32, 32)``.
    labels : numpy.ndarray
        int64, shape ``(N,)``.
    """
    try:
        entry = _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:  # any decoding failure is a format error of this file
        raise DataFormatError(f"{what} is not a CIFAR python batch ({exc}).") from None
    if not isinstance(entry, dict):
        raise DataFormatError(f"{what}: expected a pickled dict, got {type(entry).__name__}.")
    entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
    if "data" not in entry or "labels" not in entry:
        raise DataFormatError(f"{what}: missing 'data' or 'labels' (keys: {sorted(entry)}).")
    images = np.asarray(entry["data"])
    labels = np.asarray(entry["labels"], dtype=np.int64)
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3 * 32 * 32:
        raise DataFormatError(f"{what}: 'data' must be uint8 of shape (N, 3072), got "
                              f"{images.dtype} {images.shape}.")
    if labels.shape != (images.shape[0],):
        raise DataFormatError(f"{what}: {labels.shape[0]} labels for {images.shape[0]} images.")
    return images.reshape(-1, 3, 32, 32), labels
