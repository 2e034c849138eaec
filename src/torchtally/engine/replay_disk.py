"""The replay cache kept on disk between processes.

An operator's result metadata depends only on its arguments' metadata (see replay.py), so
what one process learnt from the fake kernels a later process can reuse: the first
analysis in a fresh process then skips FakeTensorMode's shape inference for every call it
has seen before. One file per torch version in the user's cache folder
(``$XDG_CACHE_HOME/torchtally``, ``~/Library/Caches/torchtally``,
``%LOCALAPPDATA%\\torchtally\\Cache``), or in the folder ``TORCHTALLY_CACHE`` names;
``TORCHTALLY_CACHE=off`` turns it off.

The file is text, one entry a line: the SHA-256 of the call's full key (the operator, every
argument's shape, stride, dtype, device and storage offset, scalars and keyword arguments,
the default dtype and the backend flags that choose layouts), the result as JSON, and a
checksum of both. Nothing in it is executed (no pickle). An entry is used only when its
checksum matches and its JSON decodes to exactly the form the operator's replay rule
expects; anything else is skipped, and a file from another format or torch version is
ignored as a whole. New entries are appended at the start of the next analysis and when
the process exits, in one write each."""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch._ops import OpOverload

ENV = "TORCHTALLY_CACHE"
_OFF = frozenset({"off", "0", "false", "no", "none", "disable", "disabled"})
FORMAT = "1"
_MAX_BYTES = 8 * 1024 * 1024  # a file past this is read but no longer grown (~50k entries)
_DTYPES: dict[str, torch.dtype] = {
    str(value).removeprefix("torch."): value for value in vars(torch).values() if isinstance(value, torch.dtype)
}


def cache_folder() -> Path | None:
    """Where the replay file lives, or None when ``TORCHTALLY_CACHE`` turns it off."""
    setting = os.environ.get(ENV, "").strip()
    if setting.lower() in _OFF:
        return None
    if setting:
        return Path(setting).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        return (Path(local) if local else home / "AppData" / "Local") / "torchtally" / "Cache"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "torchtally"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else home / ".cache") / "torchtally"


def _header() -> str:
    return f"torchtally-replay\t{FORMAT}\ttorch {torch.__version__}\n"


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _line(digest: str, value: str) -> str:
    body = f"{digest}\t{value}"
    return f"{body}\t{_checksum(body)}\n"


def context() -> str:
    """What besides the key decides result layouts: the default dtype (Python scalars
    mixed with integer tensors) and the backends that pick convolution layouts."""
    return (
        f"{torch.get_default_dtype()}|mkldnn={torch.backends.mkldnn.enabled}"
        f"|cudnn={torch.backends.cudnn.enabled}"
    )


def key_digest(prefix: str, key: Any) -> str:
    """A stable name for a replay key: every part of it has a repr without addresses
    (operators, sizes, dtypes, devices, Python scalars and their types)."""
    return hashlib.sha256(f"{prefix}|{key!r}".encode()).hexdigest()[:32]


# --- stored form <-> JSON -------------------------------------------------------------

def _encode_meta(meta: tuple[Any, ...]) -> list[Any]:
    shape, stride, dtype, device, last = meta
    return [[int(s) for s in shape], [int(s) for s in stride], str(dtype).removeprefix("torch."), str(device), last]


def encode(stored: Any) -> str | None:
    """The JSON text of a replay's stored result, or None when it has no faithful one."""
    try:
        if stored == "inplace":
            value: Any = "I"
        elif isinstance(stored, list):
            value = ["T", [_encode_meta(meta) for meta in stored]]
        elif stored[0] == "view":
            value = ["V", _encode_meta(stored[1])]
        else:
            value = ["F", _encode_meta(stored)]
    except (TypeError, ValueError, IndexError):
        return None
    return json.dumps(value, separators=(",", ":"))


def _is_ints(value: Any, minimum: int) -> bool:
    return isinstance(value, list) and all(type(v) is int and v >= minimum for v in value)


def _decode_meta(value: Any, last_type: type) -> tuple[Any, ...] | None:
    if not (isinstance(value, list) and len(value) == 5):
        return None
    shape, stride, dtype_name, device_name, last = value
    if not (_is_ints(shape, 0) and _is_ints(stride, 0) and len(shape) == len(stride)):
        return None
    dtype = _DTYPES.get(dtype_name) if isinstance(dtype_name, str) else None
    if dtype is None or type(last) is not last_type or (type(last) is int and last < 0):
        return None
    try:
        device = torch.device(device_name)
    except (RuntimeError, TypeError, ValueError):
        return None
    if str(device) != device_name:
        return None
    return (torch.Size(shape), tuple(stride), dtype, device, last)


def decode(text: str, func: OpOverload, rule: str) -> Any:
    """The stored form a JSON entry describes, if it is exactly what ``rule`` gives for
    ``func``; None otherwise."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if rule == "inplace":
        return "inplace" if value == "I" else None
    if not (isinstance(value, list) and len(value) == 2):
        return None
    kind, body = value
    if rule == "view":
        meta = _decode_meta(body, int) if kind == "V" else None
        return None if meta is None else ("view", meta)
    if rule != "fresh":
        return None
    if kind == "F":
        return _decode_meta(body, bool)
    returns = len(func._schema.returns)
    if kind == "T" and isinstance(body, list) and len(body) == returns > 1:
        metas = [_decode_meta(item, bool) for item in body]
        return None if any(meta is None for meta in metas) else metas
    return None


# --- the file -------------------------------------------------------------------------

class DiskReplay:
    """The entries of one cache file: read on first use, new ones appended on flush."""

    def __init__(self, path: Path):
        self.path = path
        self._entries: dict[str, str] | None = None
        self._pending: dict[str, str] = {}
        self._foreign = False  # the file exists but is not ours to append to

    def _load(self) -> dict[str, str]:
        entries: dict[str, str] = {}
        try:
            with open(self.path, encoding="utf-8", errors="replace") as file:
                text = file.read()
        except OSError:
            return entries
        lines = text.split("\n")
        if lines[0] + "\n" != _header():
            self._foreign = bool(text)
            return entries
        for line in lines[1:]:
            # The checksum is checked when an entry is used: most never are in one process.
            digest, _, rest = line.partition("\t")
            if len(digest) == 32 and rest:
                entries[digest] = rest
        return entries

    def get(self, digest: str, func: OpOverload, rule: str) -> Any:
        if self._entries is None:
            self._entries = self._load()
        rest = self._entries.get(digest)
        if rest is None:
            return None
        text, _, check = rest.rpartition("\t")
        stored = decode(text, func, rule) if _checksum(f"{digest}\t{text}") == check else None
        if stored is None:
            del self._entries[digest]  # a damaged or mismatched entry: never trusted, never asked again
        return stored

    def put(self, digest: str, stored: Any) -> None:
        text = encode(stored)
        if text is None:
            return
        if self._entries is not None:
            self._entries[digest] = _line(digest, text)[33:-1]  # as _load keeps it: value, tab, checksum
        self._pending[digest] = text

    def flush(self) -> None:
        """Append the new entries (a failure to write only loses them)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        body = "".join(_line(digest, value) for digest, value in pending.items())
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            size = self.path.stat().st_size if self.path.exists() else 0
            if size and self._entries is None:
                with open(self.path, encoding="utf-8", errors="replace") as file:
                    self._foreign = file.readline() != _header()
            if self._foreign or size == 0:
                # Written whole, then renamed over: a reader never sees half a file.
                temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
                temporary.write_text(_header() + body, encoding="utf-8")
                os.replace(temporary, self.path)
                self._foreign = False
            elif size < _MAX_BYTES:
                # One append of whole lines; a line torn by a crash fails its checksum.
                with open(self.path, "a", encoding="utf-8") as file:
                    file.write(body)
        except OSError:
            pass


_STORES: dict[Path, DiskReplay] = {}


def store() -> DiskReplay | None:
    """The cache file for this torch version in the folder configured now, if any."""
    folder = cache_folder()
    if folder is None:
        return None
    safe_version = "".join(c if c.isalnum() or c in ".-+" else "_" for c in torch.__version__)
    path = folder / f"replay-v{FORMAT}-torch-{safe_version}.txt"
    found = _STORES.get(path)
    if found is None:
        found = _STORES[path] = DiskReplay(path)
    return found


def flush_all() -> None:
    """Write every store's new entries."""
    for disk in _STORES.values():
        disk.flush()


atexit.register(flush_all)
