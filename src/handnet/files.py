"""Files written whole or not at all: a temp file in the same folder, then an atomic rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from handnet.errors import HandnetError


def new_file_mode() -> int:
    """What open() gives a new file, 0666 less the umask.

    (mkstemp's own 0600 would hide models, plots and reports from the other users of a shared
    machine, or from a web server.)

    Returns
    -------
    int
        The permission bits, as ``0o644`` under the usual umask 022.
    """
    mask = os.umask(0)  # the only portable way to read the umask is to set it
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """A temp file beside ``path``, open for writing, that replaces ``path`` when the block ends.

    The replacement is ``os.replace``, after a flush and an fsync; on any error the temp file is
    removed and ``path`` is left as it was. It gets the permissions of a new file. Errors pass
    through unchanged, for the caller to word.

    Parameters
    ----------
    path : Path
        The file to write; its folder must exist.

    Yields
    ------
    BinaryIO
        The temp file, open for writing bytes.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.chmod(tmp, new_file_mode())
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def make_dir(path: str | Path) -> Path:
    """``mkdir -p path``, with a one-line error when a file is in the way or permission lacks.

    Parameters
    ----------
    path : str or Path
        The directory to create, with its parents; one that exists is fine.

    Returns
    -------
    Path
        ``path``, as a `Path`.

    Raises
    ------
    HandnetError
        When a file is in the way or the directory cannot be created.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise HandnetError(f"{path}: is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HandnetError(f"{path}: cannot create the directory ({e.strerror})") from None
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through `atomic_open`, creating its directory if need be.

    A crash, a full disk or a read-only directory leaves either the old file or none, never a
    half-written one, and the temp file is removed on any failure. The file gets the permissions
    a newly created file would (0666 less the umask).

    Parameters
    ----------
    path : str or Path
        The file to write.
    data : bytes
        Its whole new content.

    Returns
    -------
    Path
        ``path``, as a `Path`.

    Raises
    ------
    HandnetError
        When the directory cannot be created or the file cannot be written.
    """
    path = Path(path)
    make_dir(path.parent)
    try:
        with atomic_open(path) as f:
            f.write(data)
    except OSError as e:
        raise HandnetError(f"{path}: cannot write ({e.strerror})") from None
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` as UTF-8, whole or not at all, as `atomic_write_bytes` does.

    Parameters
    ----------
    path : str or Path
        The file to write.
    text : str
        Its whole new content.

    Returns
    -------
    Path
        ``path``, as a `Path`.

    Raises
    ------
    HandnetError
        When the directory cannot be created or the file cannot be written.
    """
    return atomic_write_bytes(path, text.encode("utf-8"))
