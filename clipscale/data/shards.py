"""WebDataset tar and parquet shards: read, write atomically, list.

A WebDataset sample is the group of tar members sharing a key: ``KEY.jpg|png|webp`` (image),
``KEY.txt`` (caption), ``KEY.json`` (metadata, ``language`` once known). This is what img2dataset
writes. We read tars ourselves rather than through ``ray.data.read_webdataset`` because that
reader splits samples whose members are not contiguous and is slow per sample (ray#44068,
ray#65350); members are grouped by key over the whole tar here.

Shards are read from local paths or URIs (s3://, gs://, file://; see clipscale/storage.py): a
URI's tar is streamed in one read (``tarfile`` stream mode), a parquet shard read through its
pyarrow filesystem. Writing stays local (curation writes where it runs).

Nothing here decodes images: decoding belongs to the pipeline that needs pixels.

Hostile input. Nothing is ever extracted to disk: members are read into memory, so a member named
``../x`` or ``/etc/x`` cannot write anywhere. Such a member, a link (symlink or hard link, which
could point at a file outside the shard), a special file, a member or image over
``MAX_MEMBER_BYTES`` (read nothing of it: memory stays bounded) become a sample whose
``problems`` name the kind (``MEMBER_PROBLEMS``), skipped and counted like any bad sample (the
run's ``data/skipped_*``, the curation report). A caption over ``MAX_CAPTION_BYTES`` is cut there
and kept, its sample marked ``truncated_caption`` (counted in the curation report). A truncated tar, or a parquet column of the wrong type, refuses the shard with a
ShardError naming the shard and the member or column. See docs/reliability.md.
"""
from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from clipscale import storage
from clipscale.atomic import atomic_path
from clipscale.errors import ClipscaleError

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
SHARD_SUFFIXES = (".tar", ".parquet")
MAX_MEMBER_BYTES = 64 << 20   # one image (or other member); web images are far smaller
MAX_CAPTION_BYTES = 64 << 10  # alt-texts run to a few hundred bytes; a longer one is junk or hostile
# Problems of a tar member that was not read (one sample each, key = the member's name).
MEMBER_PROBLEMS = ("unsafe_member_name", "link_member", "special_member", "oversized_member")


class ShardError(ClipscaleError, RuntimeError):
    """A shard that cannot be read at all (missing, truncated, not a tar/parquet)."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass
class Sample:
    """One image-caption pair as stored. ``text`` is None when the caption is missing or is
    not valid UTF-8; ``problems`` says why, so callers can count instead of crash."""

    key: str
    image: bytes | None = None
    image_ext: str | None = None
    text: str | None = None
    meta: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _split_member(name: str) -> tuple[str, str]:
    """``dir/abc.001.jpg`` -> (``dir/abc.001``, ``jpg``): WebDataset keys may contain dots, the
    extension is what follows the last one (``.json``, ``.txt``, ``.jpg``)."""
    base, dot, ext = name.rpartition(".")
    return (base, ext.lower()) if dot else (name, "")


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a tar member is not read (one of ``MEMBER_PROBLEMS``), or None for a plain file."""
    parts = member.name.replace("\\", "/").split("/")
    if member.name.startswith("/") or ".." in parts or "\x00" in member.name:
        return "unsafe_member_name"
    if member.issym() or member.islnk():
        return "link_member"
    if not member.isfile():
        return "special_member"
    if member.size > MAX_MEMBER_BYTES:
        return "oversized_member"
    return None


def _read_members(tar: tarfile.TarFile, groups: dict[str, dict[str, bytes]],
                  rejected: list[tuple[str, str]], last: list[str]) -> None:
    for member in tar:
        last[:] = [member.name]
        if member.isdir():
            continue
        problem = member_problem(member)
        if problem:
            rejected.append((member.name, problem))
            continue
        key, ext = _split_member(member.name)
        f = tar.extractfile(member)
        groups.setdefault(key, {})[ext] = f.read() if f else b""


def _check_exists(path) -> bool:
    """Raise ShardError unless the shard exists; True when it is a URI."""
    uri = storage.is_uri(path)
    try:
        found = storage.is_file(path) if uri else path.exists()
    except OSError as e:  # storage unreachable, credentials refused
        raise ShardError(path, f"cannot reach the shard ({e})") from e
    if not found:
        raise ShardError(path, "shard does not exist")
    return uri


def iter_tar(path: str | os.PathLike) -> Iterator[Sample]:
    path = path if storage.is_uri(path) else Path(path)
    uri = _check_exists(path)
    groups: dict[str, dict[str, bytes]] = {}
    rejected: list[tuple[str, str]] = []
    last: list[str] = []
    try:
        if uri:
            fs, p = storage.resolve(path)
            with fs.open_input_stream(p) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
                _read_members(tar, groups, rejected, last)
        else:
            with tarfile.open(path, "r:*") as tar:
                _read_members(tar, groups, rejected, last)
    except (tarfile.TarError, OSError, EOFError) as e:
        where = f" after member {last[0]!r}" if last else ""
        raise ShardError(path, f"not a readable tar: truncated or corrupt{where} ({e})") from e
    for name, problem in rejected:
        yield Sample(key=name, problems=[problem])
    for key, parts in groups.items():
        yield _sample_from_parts(key, parts)


def _sample_from_parts(key: str, parts: dict[str, bytes]) -> Sample:
    s = Sample(key=key)
    for ext in IMAGE_EXTS:
        if ext in parts:
            s.image, s.image_ext = parts[ext], ext
            break
    if s.image is not None and len(s.image) > MAX_MEMBER_BYTES:  # a parquet cell; tars check first
        s.image = s.image_ext = None
        s.problems.append("oversized_member")
    elif s.image is None:
        s.problems.append("no_image")
    raw = parts.get("txt")
    if raw is None:
        s.problems.append("no_caption")
    else:
        try:
            s.text = raw.decode("utf-8")
        except UnicodeDecodeError:
            s.problems.append("undecodable_caption")
        if s.text is not None and len(raw) > MAX_CAPTION_BYTES:
            # kept, cut at a character boundary: matching, LID and tokenizing stay bounded
            s.text = raw[:MAX_CAPTION_BYTES].decode("utf-8", errors="ignore")
            s.problems.append("truncated_caption")
    if "json" in parts:
        try:
            meta = json.loads(parts["json"].decode("utf-8"))
            s.meta = meta if isinstance(meta, dict) else {"value": meta}
        except (UnicodeDecodeError, json.JSONDecodeError):
            s.problems.append("bad_json")
    return s


def parquet_image_column(cols: Iterable[str]) -> tuple[str | None, str | None]:
    """(column holding image bytes, its fixed extension): clipscale's ``image`` (extension in
    ``image_ext``), or img2dataset's parquet output mode, which names the column after its
    ``encode_format`` (``jpg``, ``png``, ``webp``)."""
    cols = set(cols)
    if "image" in cols:
        return "image", None
    for ext in IMAGE_EXTS:
        if ext in cols:
            return ext, ext
    return None, None


def iter_parquet(path: str | os.PathLike) -> Iterator[Sample]:
    """Parquet shards: columns ``key``, ``image`` (bytes) or img2dataset's ``jpg``/``png``/``webp``,
    ``caption`` or ``txt`` or ``text``, optional ``image_ext``, ``json`` (str) and ``language``.
    A table without a ``json`` column (img2dataset's) keeps its other scalar columns (``url``,
    ``status``, ``width``, ...) as the sample's metadata."""
    import pyarrow.parquet as pq

    path = path if storage.is_uri(path) else Path(path)
    uri = _check_exists(path)
    try:
        if uri:
            fs, p = storage.resolve(path)
            pfile = pq.ParquetFile(fs.open_input_file(p))
        else:
            pfile = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several unrelated types for a bad file
        raise ShardError(path, f"not a readable parquet file ({e})") from e
    check_parquet_types(path, pfile.schema_arrow)
    stem = storage.name(path).rsplit(".", 1)[0] if uri else path.stem
    cols = set(pfile.schema_arrow.names)
    text_col = next((c for c in ("caption", "txt", "text") if c in cols), None)
    image_col, fixed_ext = parquet_image_column(cols)
    meta_cols = [] if "json" in cols else [c for c in pfile.schema_arrow.names
                                           if c not in (image_col, text_col, "key", "image_ext")]
    for i, row in enumerate(_parquet_rows(path, pfile)):
        parts: dict[str, bytes] = {}
        if image_col and row.get(image_col) is not None:
            ext = fixed_ext or str(row.get("image_ext") or "jpg").lower()
            parts[ext if ext in IMAGE_EXTS else "jpg"] = row[image_col]
        if text_col and row.get(text_col) is not None:
            t = row[text_col]
            parts["txt"] = t if isinstance(t, bytes) else str(t).encode("utf-8")
        if row.get("json") is not None:
            j = row["json"]
            parts["json"] = j if isinstance(j, bytes) else str(j).encode("utf-8")
        key = row.get("key")
        s = _sample_from_parts(str(key) if key is not None else f"{stem}-{i:08d}", parts)
        for c in meta_cols:
            if isinstance(row.get(c), (str, int, float, bool)) and c not in s.meta:
                s.meta[c] = row[c]
        if "language" in cols and row.get("language") and "language" not in s.meta:
            s.meta["language"] = row["language"]
        yield s


# Column -> the arrow types it may have (null: a column of only missing values).
PARQUET_TYPES = {"image": ("binary", "large_binary", "null"),
                 **{ext: ("binary", "large_binary", "null") for ext in ("jpg", "png", "webp")},  # img2dataset
                 "caption": ("string", "large_string", "binary", "large_binary", "null"),
                 "txt": ("string", "large_string", "binary", "large_binary", "null"),
                 "text": ("string", "large_string", "binary", "large_binary", "null"),
                 "json": ("string", "large_string", "binary", "large_binary", "null"),
                 "image_ext": ("string", "large_string", "null"),
                 "language": ("string", "large_string", "null")}


def check_parquet_types(path, schema) -> None:
    """Refuse a parquet shard whose known columns have the wrong type, naming the column."""
    for name in schema.names:
        allowed = PARQUET_TYPES.get(name)
        if allowed and str(schema.field(name).type) not in allowed:
            raise ShardError(path, f"column {name!r} has type {schema.field(name).type}, expected one of "
                                   f"{', '.join(allowed)}")


def _parquet_rows(path, pfile) -> Iterator[dict]:
    """Rows in small batches: a shard is never held whole in memory."""
    try:
        for batch in pfile.iter_batches(batch_size=256):
            yield from batch.to_pylist()
    except Exception as e:  # a damaged row group
        raise ShardError(path, f"not a readable parquet file ({e})") from e


def iter_shard(path: str | os.PathLike) -> Iterator[Sample]:
    p = str(path)
    return iter_parquet(p) if p.endswith(".parquet") else iter_tar(p)


def sample_members(s: Sample) -> dict[str, bytes]:
    parts: dict[str, bytes] = {}
    if s.image is not None:
        parts[s.image_ext or "jpg"] = s.image
    if s.text is not None:
        parts["txt"] = s.text.encode("utf-8")
    parts["json"] = json.dumps(s.meta, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return parts


def write_tar(path: str | os.PathLike, samples: Iterable[Sample]) -> int:
    """Write samples to ``path`` atomically (temp file in the same folder, then rename), so a
    crash never leaves a half shard that a re-run would take as finished. Returns the count."""
    n = 0
    with atomic_path(path) as tmp, tarfile.open(tmp, mode="w") as tar:
        for s in samples:
            for ext, data in sample_members(s).items():
                info = tarfile.TarInfo(f"{s.key}.{ext}")
                info.size = len(data)
                info.mtime = 0  # byte-identical shards for identical input
                tar.addfile(info, io.BytesIO(data))
            n += 1
    return n


def write_parquet(path: str | os.PathLike, samples: Iterable[Sample]) -> int:
    """Write samples as a parquet shard that ``iter_parquet`` reads back (``key``, ``image``,
    ``image_ext``, ``caption``, ``json``, ``language``), atomically like ``write_tar``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = {"key": [], "image": [], "image_ext": [], "caption": [], "json": [], "language": []}
    for s in samples:
        rows["key"].append(s.key)
        rows["image"].append(s.image)
        rows["image_ext"].append(s.image_ext)
        rows["caption"].append(s.text)
        rows["json"].append(json.dumps(s.meta, ensure_ascii=False, sort_keys=True))
        lang = s.meta.get("language")
        rows["language"].append(lang if isinstance(lang, str) else None)
    schema = pa.schema([("key", pa.string()), ("image", pa.binary()), ("image_ext", pa.string()),
                        ("caption", pa.string()), ("json", pa.string()), ("language", pa.string())])
    table = pa.table(rows, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return table.num_rows


def write_shard(path: str | os.PathLike, samples: Iterable[Sample]) -> int:
    """``write_parquet`` for a ``.parquet`` path, ``write_tar`` otherwise."""
    return write_parquet(path, samples) if str(path).endswith(".parquet") else write_tar(path, samples)


def drop_tar_metadata(paths: list[str]) -> list[str]:
    """Without img2dataset's per-tar metadata: beside each ``NNNNN.tar`` it writes ``NNNNN.parquet``
    (one row per sample: url, caption, status, no image) and ``NNNNN_stats.json``. A parquet file
    whose stem names a tar in the same folder is that tar's metadata, not a shard of its own."""
    tars = {p[: -len(".tar")] for p in paths if p.endswith(".tar")}
    return [p for p in paths if not (p.endswith(".parquet") and p[: -len(".parquet")] in tars)]


def _list_uri(item: str) -> list[str]:
    """Shards at a URI: a glob (wildcards in the last component), a folder, or one file."""
    try:
        if any(ch in item for ch in "*?["):
            found = drop_tar_metadata(storage.glob(item))
            if not found:
                raise ShardError(item, "glob matches no shard")
            return found
        if storage.is_dir(item):
            found = drop_tar_metadata([f for f in storage.list_files(item) if f.endswith(SHARD_SUFFIXES)])
            if not found:
                raise ShardError(item, "folder holds no .tar or .parquet shard")
            return found
        if storage.is_file(item):
            return [item]
    except (OSError, ValueError) as e:  # unreachable storage, a wildcard in a folder name
        raise ShardError(item, str(e)) from e
    raise ShardError(item, "shard does not exist")


def list_shards(source: str | os.PathLike | list) -> list[str]:
    """Shard paths from a folder, a glob, a single file or a list of any of those; sorted,
    absolute (Ray workers run in another cwd); URIs stay URIs. Raises ShardError naming what
    was empty or missing."""
    import glob

    items = source if isinstance(source, (list, tuple)) else [source]
    out: list[str] = []
    for item in items:
        item = str(item)
        if storage.is_uri(item):
            out.extend(_list_uri(item))
        elif any(ch in item for ch in "*?["):
            found = drop_tar_metadata(sorted(glob.glob(item)))
            if not found:
                raise ShardError(item, "glob matches no shard")
            out.extend(found)
        elif os.path.isdir(item):
            found = drop_tar_metadata(sorted(str(p) for p in Path(item).iterdir()
                                             if p.suffix in SHARD_SUFFIXES and not p.name.startswith(".")))
            if not found:
                raise ShardError(item, "folder holds no .tar or .parquet shard")
            out.extend(found)
        elif os.path.isfile(item):
            out.append(item)
        else:
            raise ShardError(item, "shard does not exist")
    if not out:
        raise ShardError(str(source), "empty shard list")
    return [p if storage.is_uri(p) else os.path.abspath(p) for p in out]
