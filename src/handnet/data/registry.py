"""Named datasets: the bundled MNIST, and Fashion-MNIST / KMNIST found on disk or downloaded.

Look-up order for a downloadable dataset: ``--data-dir``, the user cache (``$HANDNET_CACHE`` or
``~/.cache/handnet``), Debian's ``/usr/share/datasets/<name>``; failing those, the upstream mirror.
Downloads go to a temp file, are checked against the published MD5, then renamed into the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from handnet.data.formats import Splits, checked_splits, read_idx_pair
from handnet.errors import DatasetError
from handnet.files import atomic_open

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@dataclass(frozen=True)
class NamedDataset:
    """A dataset handnet knows by name: its classes and where its IDX files come from.

    Parameters
    ----------
    name : str
        The name, as ``--dataset`` takes it.
    classes : tuple of str
        The class names; label ``k`` is ``classes[k]``.
    mirror : str or None
        The base URL of the upstream IDX files; None for the bundled MNIST.
    md5 : dict of str to str
        The MD5 checksum upstream publishes for each of its ``.gz`` files, by file name.
    """

    name: str
    classes: tuple[str, ...]
    mirror: str | None  # base URL of the upstream IDX files; None for the bundled MNIST
    md5: dict[str, str]  # the checksums upstream publishes for its .gz files


DATASETS: dict[str, NamedDataset] = {
    "mnist": NamedDataset("mnist", tuple(str(d) for d in range(10)), None, {}),
    "fashion-mnist": NamedDataset(
        "fashion-mnist",
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
    "kmnist": NamedDataset(
        "kmnist",
        ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        {
            "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
            "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
            "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
            "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
        },
    ),
}
DEBIAN_DIR = Path("/usr/share/datasets")


def cache_dir() -> Path:
    """The user cache: ``$HANDNET_CACHE`` if set, else ``~/.cache/handnet``.

    Returns
    -------
    Path
        The cache folder; it may not exist yet.
    """
    env = os.environ.get("HANDNET_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "handnet"


def _idx_file(directory: Path, name: str) -> Path:
    """``directory/name`` (gzip), or the same file gunzipped (``name`` without ``.gz``) if only that
    one is there."""
    path = directory / name
    raw = path.with_suffix("")
    return raw if not path.is_file() and raw.is_file() else path


def read_idx_dir(directory: Path) -> Splits:
    """Read the four standard IDX files, each gzipped or not, from one directory.

    Parameters
    ----------
    directory : Path
        The folder holding the files of IDX_FILES, or the same files gunzipped.

    Returns
    -------
    Splits
        The training and test images (N, H, W) and their labels.

    Raises
    ------
    DatasetError
        When a file is missing or invalid, or the splits fail
        `handnet.data.formats.checked_splits`.
    """
    tr_x, tr_y, te_x, te_y = (_idx_file(directory, f) for f in IDX_FILES)
    X_tr, y_tr = read_idx_pair(tr_x, tr_y)
    X_te, y_te = read_idx_pair(te_x, te_y)
    return checked_splits(directory, Splits(X_tr, y_tr, X_te, y_te))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def bundled_mnist_dir() -> Path:
    """The folder inside the installed package that holds the bundled MNIST.

    Returns
    -------
    Path
        ``handnet/data/mnist``: the four IDX files and their SHA256SUMS.
    """
    return Path(str(resources.files("handnet") / "data" / "mnist"))


def load_bundled_mnist() -> Splits:
    """The MNIST copy inside the package, verified against its SHA256SUMS on every load.

    Returns
    -------
    Splits
        MNIST's 60,000 training and 10,000 test images, uint8 (N, 28, 28), and their labels.

    Raises
    ------
    DatasetError
        When a file does not match its checksum.
    """
    d = bundled_mnist_dir()
    sums = (d / "SHA256SUMS").read_text().split("\n")
    for line in filter(None, sums):
        digest, name = line.split()
        if _sha256(d / name) != digest:
            raise DatasetError(f"{d / name}: SHA-256 mismatch; the bundled MNIST is damaged")
    return read_idx_dir(d)


def download(url: str, dest: Path, md5: str, *, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` atomically; on a checksum mismatch delete it and raise.

    Parameters
    ----------
    url : str
        The file to fetch (http, https or file).
    dest : Path
        Where to write it; its folder is created. It is replaced only by a complete file with
        the right checksum.
    md5 : str
        The expected MD5 checksum, in hex.
    timeout : float, default=60.0
        Seconds to wait for the server, per connection attempt and read.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    DatasetError
        When the download fails, the URL is malformed, or the checksum differs.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.md5(usedforsecurity=False)
        with atomic_open(dest) as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
            if h.hexdigest() != md5:  # inside the block: nothing replaces dest
                raise DatasetError(
                    f"{url}: checksum mismatch (MD5 {h.hexdigest()}, expected {md5})"
                )
    except (urllib.error.URLError, OSError, ValueError) as e:  # ValueError: a malformed URL
        raise DatasetError(f"{url}: download failed ({e})") from None
    return dest


def _has_files(d: Path) -> bool:
    return all(_idx_file(d, f).is_file() for f in IDX_FILES)


def _checked_mirror(url: str) -> str:
    """``url`` if it can be a base URL to download from (http, https or file), else an error."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as e:  # e.g. an unclosed [IPv6 address
        raise DatasetError(f"--mirror {url}: not a URL ({e})") from None
    if parts.scheme not in ("http", "https", "file") or not (parts.netloc or parts.path):
        raise DatasetError(f"--mirror {url}: expected an http://, https:// or file:// URL")
    return url


def load_named(name: str, *, data_dir: Path | None = None, mirror: str | None = None) -> Splits:
    """Load a named dataset, searching disk first and downloading only when nothing is found.

    The folders searched are ``data_dir``, ``data_dir/name``, the user cache (`cache_dir`) and
    Debian's ``/usr/share/datasets/name``; MNIST without a ``data_dir`` is the bundled copy.
    Downloads go to the user cache.

    Parameters
    ----------
    name : str
        A key of `DATASETS`.
    data_dir : Path, optional
        The folder to search first.
    mirror : str, optional
        The base URL to download from instead of the dataset's upstream (http, https or file).

    Returns
    -------
    Splits
        The training and test images (N, 28, 28) and their labels.

    Raises
    ------
    DatasetError
        When the name is unknown, MNIST is not in ``data_dir``, the mirror is not a URL, a
        download fails, or the files are invalid.
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset '{name}'; choose one of {sorted(DATASETS)}")
    if name == "mnist" and data_dir is None:
        return load_bundled_mnist()
    candidates = [p for p in (data_dir, data_dir / name if data_dir else None) if p is not None]
    candidates += [cache_dir() / name, DEBIAN_DIR / name]
    for d in candidates:
        if _has_files(d):
            return read_idx_dir(d)
    if name == "mnist":
        raise DatasetError(f"{data_dir}: no MNIST IDX files ({', '.join(IDX_FILES)})")
    spec = DATASETS[name]
    base = _checked_mirror(mirror) if mirror else spec.mirror
    assert base is not None
    target = cache_dir() / name
    try:
        for f in IDX_FILES:
            if not (target / f).is_file():
                download(base.rstrip("/") + "/" + f, target / f, spec.md5[f])
    except DatasetError:
        with contextlib.suppress(OSError):
            target.rmdir()  # only if nothing was fetched: no empty folders left in the cache
        raise
    return read_idx_dir(target)
