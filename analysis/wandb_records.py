"""Reading a W&B offline run file (``run-<id>.wandb``) without the network or the wandb service.

The file is a LevelDB-style log: a 7-byte header (``:W&B``, magic 0xBEE1, version 0), then 32 KiB
blocks of chunks, each with a 7-byte header (CRC-32 of type byte + data, length, type: 1 full,
2 first, 3 middle, 4 last); chunks join into protobuf ``Record`` messages. wandb 0.31 ships no
Python reader for it (``wandb.sdk.internal.datastore`` is gone), so this is the reader.
"""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Iterator

from clipscale.errors import ClipscaleError

HEADER = struct.Struct("<4sHB")
CHUNK = struct.Struct("<IHB")
BLOCK_SIZE = 32 * 1024
IDENT, MAGIC, VERSION = b":W&B", 0xBEE1, 0
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class CorruptRunFile(ClipscaleError, ValueError):
    pass


def iter_record_bytes(data: bytes, name: str = "run file") -> Iterator[bytes]:
    """Serialized records of a run file. A torn final chunk (a writer killed mid-write) ends the
    iteration; a checksum mismatch before the end is corruption and raises."""
    if len(data) < HEADER.size:
        raise CorruptRunFile(f"{name}: too short for a W&B run file")
    ident, magic, version = HEADER.unpack_from(data, 0)
    if ident != IDENT or magic != MAGIC or version != VERSION:
        raise CorruptRunFile(f"{name}: not a W&B run file (header {ident!r} {magic:#x} v{version})")
    pos, pending = HEADER.size, None
    while True:
        room = BLOCK_SIZE - pos % BLOCK_SIZE
        if room < CHUNK.size:  # block trailer: zero padding
            pos += room
        if pos + CHUNK.size > len(data):
            return
        checksum, length, kind = CHUNK.unpack_from(data, pos)
        pos += CHUNK.size
        if kind == 0 and length == 0:
            return  # zero-filled tail
        chunk = data[pos:pos + length]
        if len(chunk) < length:
            return  # torn write at the end
        if zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != checksum:
            raise CorruptRunFile(f"{name}: checksum mismatch at byte {pos - CHUNK.size}")
        pos += length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE and pending is not None:
            pending += chunk
        elif kind == LAST and pending is not None:
            yield pending + chunk
            pending = None


def history_rows(path: str | Path) -> Iterator[dict]:
    """Every ``wandb.log`` call of an offline run, as the dict that was logged (values JSON-decoded)."""
    from wandb.proto import wandb_internal_pb2 as pb  # imported here: importing wandb is slow

    path = Path(path)
    for raw in iter_record_bytes(path.read_bytes(), str(path)):
        record = pb.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") != "history":
            continue
        row = {}
        for item in record.history.item:
            key = item.key or "/".join(item.nested_key)
            row[key] = json.loads(item.value_json)
        yield row
