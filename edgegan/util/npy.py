"""Read a ``.npy`` someone else wrote (a user, a bundle, a device) without trusting it.

``np.load`` allocates whatever the header claims before it reads a byte of data, so a 100-byte
file can ask for a terabyte; it also follows symlinks and accepts FIFOs. :func:`load_npy`
opens the file without following a final symlink, requires a regular file, parses the header
itself, refuses object dtypes, and checks ``shape x itemsize`` against both the bytes the file
really holds and a size limit before numpy allocates anything.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Type

import numpy as np

from ..errors import EdgeganError, InputSpecError

MAX_NPY_BYTES = 4 << 30  # 4 GiB: far above any bundle or sample array edgegan writes


def load_npy(path: str | Path, what: str = "array", error: Type[EdgeganError] = InputSpecError,
             max_bytes: int = MAX_NPY_BYTES) -> np.ndarray:
    """The array in ``path``; ``error`` (one line naming ``what`` and the file) for a missing,
    special, symlinked, pickled, truncated, oversized or malformed file."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{what} '{path}' does not exist") from None
    except OSError as exc:
        hint = "it is a symlink; pass the real file" if path.is_symlink() else exc.strerror
        raise error(f"cannot read {what} '{path}' ({hint})") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{what} '{path}' is not a regular file; pass a .npy written by numpy.save")
        try:
            major, _minor = np.lib.format.read_magic(fh)
            if major == 1:
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=10000)
            elif major in (2, 3):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=10000)
            else:
                raise ValueError(f"unsupported .npy version {major}")
        except (ValueError, OSError, SyntaxError, TypeError, EOFError) as exc:
            raise error(f"{what} '{path}' is not a .npy array ({str(exc)[:120]}); save it with numpy.save") from None
        if dtype.hasobject:
            raise error(f"{what} '{path}' is not a readable numeric .npy: it holds Python objects (pickled); "
                        "save a numeric array with numpy.save")
        count = 1
        for dim in shape:
            count *= int(dim)
        need = count * dtype.itemsize
        have = st.st_size - fh.tell()
        if need > max_bytes:
            raise error(f"{what} '{path}' claims shape {list(shape)} ({need:,} bytes), above the {max_bytes:,}-byte "
                        "limit; pass a smaller array")
        if need > have:
            raise error(f"{what} '{path}' is truncated: its header claims {need:,} bytes of data, the file holds "
                        f"{have:,}; re-create it")
        fh.seek(0)
        try:
            return np.load(fh, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise error(f"{what} '{path}' is not a readable .npy array ({str(exc)[:120]})") from None
