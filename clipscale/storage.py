"""Storage locations: a local path or a URI (``s3://``, ``gs://``, ``file://``, ...), read and
written the same way, so every node of a cluster reads and writes the same place.

A location is a string. URIs go through ``pyarrow.fs.FileSystem.from_uri`` (the filesystem is
resolved once per bucket and process: resolving an S3 bucket asks AWS for its region). Local
paths go through the same calls on pyarrow's local filesystem, except writes, which are atomic
(``clipscale.atomic``). Object stores put whole objects, so a write is never seen half done
there either; ``file://`` URIs, which is how the URI path is tested without a network, write a
hidden temp file and rename it. Never use os, pathlib or open() on a location that may be a URI.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import tempfile
import uuid
from functools import cache, lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from clipscale.atomic import atomic_path
from clipscale.errors import ClipscaleError, ConfigError, NotFound

# Schemes pyarrow.fs resolves. Its wheels carry S3 and GCS; HDFS needs a JVM and libhdfs on the
# node, Azure (abfs) a pyarrow built with it: pyarrow says so when the location is first used.
SCHEMES = ("file", "s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")  # two letters at least: C:/ is a Windows path


class StorageError(ClipscaleError, OSError):
    """A location that cannot be resolved or reached; the message names the field and location."""


def is_uri(loc) -> bool:
    return isinstance(loc, str) and _URI.match(loc) is not None


def check_uri(loc: str) -> None:
    """Syntax check of a URI, without the network: a scheme pyarrow reads, a ``file://`` URI
    with no host, a bucket for object stores. Raises ConfigError (a ValueError) naming the location."""
    parts = urlsplit(loc)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigError(f"{loc}: unsupported storage scheme {scheme!r} (pyarrow.fs reads "
                         f"{', '.join(s + '://' for s in SCHEMES)})")
    if scheme == "file" and parts.netloc:
        raise ConfigError(f"{loc}: a file URI names no host (file:///absolute/path)")
    if scheme in ("s3", "gs", "gcs") and not parts.netloc:
        raise ConfigError(f"{loc}: no bucket (expected {scheme}://BUCKET/PREFIX)")


def _message(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:400]


@cache
def _local():
    import pyarrow.fs
    return pyarrow.fs.LocalFileSystem()


@lru_cache(maxsize=64)
def _filesystem(root: str):
    import pyarrow.fs
    return pyarrow.fs.FileSystem.from_uri(root)


def resolve(loc, field: str | None = None):
    """``(pyarrow filesystem, path on it)``; a URI pyarrow cannot resolve (unknown scheme, no
    credentials, bucket unreachable) raises StorageError naming ``field`` and the location."""
    if not is_uri(loc):
        return _local(), os.path.abspath(os.fspath(loc))
    parts = urlsplit(loc)
    root = urlunsplit((parts.scheme, parts.netloc, "/", parts.query, ""))
    try:
        fs, base = _filesystem(root)
    except Exception as e:  # pyarrow raises ArrowInvalid (a ValueError) or OSError
        raise StorageError(f"{field + ': ' if field else ''}{loc}: {_message(e)}") from e
    path = unquote(parts.path).rstrip("/")
    return fs, (base.rstrip("/") + path) or "/"


def check(loc, field: str) -> None:
    """Resolve a location and ask for it once, so missing credentials or an unreachable bucket
    fail here, naming the config field, instead of in a worker."""
    fs, path = resolve(loc, field)
    try:
        fs.get_file_info(path)
    except Exception as e:
        raise StorageError(f"{field}: {loc}: {_message(e)}") from e


def join(loc, *parts: str) -> str:
    if not is_uri(loc):
        return os.path.join(os.fspath(loc), *parts)
    s = urlsplit(loc)
    path = "/".join([s.path.rstrip("/"), *(p.strip("/") for p in parts)])
    return urlunsplit((s.scheme, s.netloc, path, s.query, s.fragment))


def name(loc) -> str:
    """The last component of a location (a file's name)."""
    return (urlsplit(loc).path if is_uri(loc) else os.fspath(loc)).rstrip("/").rsplit("/", 1)[-1]


def absolute(loc, base=None) -> str:
    """URIs unchanged; local paths made absolute (relative ones taken from ``base``, else the cwd)."""
    if is_uri(loc):
        return loc
    p = Path(loc)
    return str((p if p.is_absolute() else (Path(base) if base is not None else Path.cwd()) / p).resolve())


def _type(loc):
    fs, path = resolve(loc)
    return fs.get_file_info(path).type


def exists(loc) -> bool:
    from pyarrow.fs import FileType
    return _type(loc) != FileType.NotFound


def is_file(loc) -> bool:
    from pyarrow.fs import FileType
    return _type(loc) == FileType.File


def is_dir(loc) -> bool:
    """A folder; on an object store, a prefix that holds objects."""
    from pyarrow.fs import FileType
    return _type(loc) == FileType.Directory


def makedirs(loc) -> None:
    """Create a folder (object stores have none: nothing to do)."""
    fs, path = resolve(loc)
    if isinstance(fs, type(_local())):
        fs.create_dir(path, recursive=True)


def read_bytes(loc) -> bytes:
    fs, path = resolve(loc)
    with fs.open_input_stream(path) as f:
        return f.read()


def read_text(loc) -> str:
    return read_bytes(loc).decode("utf-8")


def write_bytes(loc, data: bytes) -> None:
    """Write a whole file or object; never seen half written."""
    if not is_uri(loc):
        with atomic_path(loc) as tmp:
            Path(tmp).write_bytes(data)
        return
    fs, path = resolve(loc)
    target = path
    if isinstance(fs, type(_local())):  # file://: a hidden temp file, renamed into place
        parent, _, base = path.rpartition("/")
        fs.create_dir(parent or "/", recursive=True)
        path = f"{parent}/.{base}.{uuid.uuid4().hex[:8]}.tmp"
    with fs.open_output_stream(path) as f:
        f.write(data)
    if path != target:
        fs.move(path, target)


def write_text(loc, text: str) -> None:
    write_bytes(loc, text.encode("utf-8"))


def append_text(loc, text: str) -> None:
    """Append to a small log file. Objects cannot be appended to: a URI's object is read and put
    again whole, so only one writer may append to it (the sweep driver does)."""
    if not is_uri(loc):
        os.makedirs(os.path.dirname(os.path.abspath(loc)), exist_ok=True)
        with open(loc, "a", encoding="utf-8") as f:
            f.write(text)
        return
    write_text(loc, (read_text(loc) if exists(loc) else "") + text)


def upload_dir(local: str, loc) -> None:
    """Copy a local folder's files to ``loc`` (a path or a URI). Not atomic: a reader checks a
    copied checkpoint's commit markers (train/commit.py), not its presence."""
    import pyarrow.fs

    fs, path = resolve(loc)
    if isinstance(fs, type(_local())):
        fs.create_dir(path, recursive=True)
    pyarrow.fs.copy_files(os.path.abspath(local), path, source_filesystem=_local(), destination_filesystem=fs)


def remove_dir(loc) -> None:
    """Delete a folder and everything in it (nothing when it does not exist)."""
    from pyarrow.fs import FileType

    fs, path = resolve(loc)
    if fs.get_file_info(path).type != FileType.NotFound:
        fs.delete_dir(path)


def list_files(loc, pattern: str = "*") -> list[str]:
    """Files directly in a folder whose name matches ``pattern`` (fnmatch), sorted by name; a
    folder that does not exist has none. Hidden files (temp files of writes) are left out."""
    from pyarrow.fs import FileSelector, FileType

    fs, path = resolve(loc)
    infos = fs.get_file_info(FileSelector(path, allow_not_found=True))
    names = sorted(i.base_name for i in infos if i.type == FileType.File)
    return [join(loc, n) for n in names if not n.startswith(".") and fnmatch.fnmatchcase(n, pattern)]


def glob(pattern: str) -> list[str]:
    """Files matching a pattern; on a URI the wildcards may only be in the last component."""
    folder, _, last = pattern.rstrip("/").rpartition("/")
    if any(ch in folder for ch in "*?["):
        raise ConfigError(f"{pattern}: wildcards are only supported in the last component of a URI")
    return list_files(folder, last)


def local_dir(*parts: str) -> str:
    """A node-local scratch folder (``CLIPSCALE_LOCAL_DIR``, else under the temp folder)."""
    root = os.environ.get("CLIPSCALE_LOCAL_DIR") or os.path.join(
        tempfile.gettempdir(), f"clipscale-{os.getuid() if hasattr(os, 'getuid') else 'user'}")
    d = os.path.join(root, *parts)
    os.makedirs(d, exist_ok=True)
    return d


def local_copy(loc) -> str:
    """A local path to read the file at ``loc`` from: the path itself, or for a URI a copy in
    the node's cache. The cache key is the URI with the object's size and modification time, so
    a replaced object is fetched again; tasks on one node that fetch the same object at once
    each write their own temp file and rename it into place, so none reads a partial copy."""
    if not is_uri(loc):
        return os.fspath(loc)
    from pyarrow.fs import FileType

    fs, path = resolve(loc)
    info = fs.get_file_info(path)
    if info.type != FileType.File:
        raise NotFound(f"{loc}: no such file")
    key = hashlib.sha1(f"{loc}|{info.size}|{info.mtime_ns}".encode()).hexdigest()[:20]
    dest = os.path.join(local_dir("cache", key), name(loc))
    if not os.path.isfile(dest):
        with atomic_path(dest) as tmp, fs.open_input_stream(path) as src, open(tmp, "wb") as out:
            while chunk := src.read(1 << 22):
                out.write(chunk)
    return dest
