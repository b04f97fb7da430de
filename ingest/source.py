"""A uniform view of what a user hands us: a file, a folder, a zip, or bytes.

Readers see a :class:`Source`: a name for messages and a flat set of members (one member for a plain
file or bytes; the files inside for a folder or zip). Gzip is undone here, once. Hidden files (``.name``) and
macOS's ``__MACOSX`` copies are left out. A folder's files are read only when a reader asks for them, and a
folder, like a zip, may hold at most :data:`MAX_DECOMPRESSED_BYTES` of files.
"""

from __future__ import annotations

import io
import lzma
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ingest.errors import FormatError, SizeError

try:                                   # Intel ISA-L: zlib's API, inflates ~2.5x faster
    from isal import isal_zlib as _zlib
except ImportError:                    # pragma: no cover - isal is a dependency; zlib is the fallback
    import zlib as _zlib

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
MAX_DECOMPRESSED_BYTES = 2_000_000_000
SINGLE_FILE_SUFFIXES = (".csv", ".tsv", ".txt", ".json", ".gz", ".zip")   # a container's lone member: that file
# a zip member's local header: signature, flags, ..., name and extra lengths; two of its flag bits
_ZIP_LOCAL_HEADER = struct.Struct("<4s2xH18xHH")
_ZIP_ENCRYPTED = 0x1
_ZIP_UTF8_NAME = 0x800             # the name is UTF-8 (else cp437)


def gunzip(data: bytes, *, name: str, max_bytes: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Decompress gzip ``data`` (several members allowed, as ``cat a.gz b.gz`` makes), refusing more than
    ``max_bytes`` of output (gzip bombs): :class:`SizeError` then, :class:`FormatError` for bad gzip. Uses Intel's
    ISA-L (``isal``, ~2.5x faster) when installed, else ``zlib``."""
    parts: list[bytes] = []                      # one part for a one-member file: returned without a copy
    n_out = 0
    d = _zlib.decompressobj(16 + _zlib.MAX_WBITS)
    buf = data
    try:
        while True:
            parts.append(d.decompress(buf, max_bytes + 1 - n_out))
            n_out += len(parts[-1])
            if n_out > max_bytes:
                raise SizeError(f"decompresses to more than {max_bytes} bytes; split the trip", source=name)
            if d.unconsumed_tail:
                buf = d.unconsumed_tail
                continue
            if d.eof and d.unused_data.startswith(GZIP_MAGIC):
                buf, d = d.unused_data, _zlib.decompressobj(16 + _zlib.MAX_WBITS)
                continue
            break
    except _zlib.error as exc:
        raise FormatError(f"is not valid gzip ({exc}); compress it again or send it uncompressed",
                          source=name) from None
    if not d.eof:
        raise FormatError("is not valid gzip: the stream ends early (truncated?); send the whole file", source=name)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class _FolderFiles(Mapping[str, bytes]):
    """A folder's files by POSIX-style relative path, each read on first use and kept: sniffing looks at a few
    files by name, so an unrelated video beside an export is never read."""

    def __init__(self, root: Path, paths: list[str], label: str) -> None:
        self._root, self._paths, self._label = root, paths, label
        self._known = set(paths)
        self._loaded: dict[str, bytes] = {}

    def __getitem__(self, member: str) -> bytes:
        if member not in self._loaded:
            if member not in self._known:
                raise KeyError(member)
            try:
                self._loaded[member] = (self._root / member).read_bytes()
            except OSError as exc:
                raise FormatError(f"cannot be read ({exc.strerror or exc}); check the file's permissions",
                                  source=self._label, field=member) from exc
        return self._loaded[member]

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


@dataclass
class Source:
    """Input bytes by member name: ``members`` maps a POSIX-style relative path to the member's bytes."""

    name: str
    members: Mapping[str, bytes] = field(default_factory=dict)
    single: bool = True          # a plain file or bytes, not a container

    def member_names(self) -> list[str]:
        return list(self.members)

    def find(self, basename: str) -> str | None:
        """The member whose file name is ``basename`` (case-insensitive), shallowest first."""
        want = basename.lower()
        hits = [m for m in self.members if PurePosixPath(m).name.lower() == want]
        return min(hits, key=lambda m: m.count("/")) if hits else None

    def read(self, member: str) -> bytes:
        return self.members[member]

    @property
    def data(self) -> bytes:
        """The bytes of a single-file source."""
        if not self.single:
            raise FormatError("is a folder or archive, not a single file", source=self.name)
        return next(iter(self.members.values()))

    def head(self, n: int = 4096) -> bytes:
        return self.data[:n] if self.single else b""


def open_source(src: str | Path | bytes | bytearray | memoryview, *, name: str | None = None) -> Source:
    """Open a path (file, folder, zip, .gz) or raw bytes as a :class:`Source`."""
    if isinstance(src, bytes | bytearray | memoryview):
        return _from_bytes(bytes(src), name or "<bytes>")
    if not isinstance(src, str | os.PathLike):
        raise TypeError(f"open_source() takes a path (str or pathlib.Path) or bytes, not {type(src).__name__}")
    path = Path(src)
    label = name or str(path)
    if path.is_dir():
        return _from_folder(path, label)
    if not path.exists():
        raise FormatError("does not exist; check the path", source=label)
    return _from_bytes(path.read_bytes(), label)


def only_file(src: Source) -> Source | None:
    """The one file of a folder or zip that holds exactly one trace file (a CSV or JSON zipped to e-mail it), as a
    single-file Source named ``<container>/<file>``; None for a single file, several members, or a file whose
    name says it is no trace (a lone video in a folder is never read)."""
    if src.single or len(src.members) != 1:
        return None
    member = next(iter(src.members))
    if not member.lower().endswith(SINGLE_FILE_SUFFIXES):
        return None
    return _from_bytes(src.read(member), f"{src.name}/{member}")


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _from_folder(path: Path, label: str) -> Source:
    """The files under ``path`` (hidden ones left out), refused above MAX_DECOMPRESSED_BYTES in all (checked from
    their sizes before any is read), read lazily."""
    sizes: dict[str, int] = {}
    for root, dirs, names in os.walk(path):
        dirs[:] = [d for d in dirs if not _hidden(d)]
        for name in names:
            p = Path(root) / name
            if not _hidden(name) and p.is_file():
                sizes[p.relative_to(path).as_posix()] = p.stat().st_size
    if not sizes:
        raise FormatError("is an empty folder; point at a phone export or a trace file", source=label)
    total = sum(sizes.values())
    if total > MAX_DECOMPRESSED_BYTES:
        raise FormatError(f"holds {total} bytes of files, more than {MAX_DECOMPRESSED_BYTES}; point at the export "
                          "folder itself, or move other files out of it", source=label)
    paths = sorted(sizes, key=lambda m: PurePosixPath(m).parts)
    return Source(label, _FolderFiles(path, paths, label), single=False)


def _unzip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, data: bytes) -> bytes:
    """One member of the zip archive ``data`` (open as ``zf``), unpacked. A deflated member (what phone apps
    write) is inflated by ISA-L when installed, about twice as fast as ``zipfile`` (zlib) inflates a Sensor
    Logger export, and checked as ``zipfile`` checks it: its local header's signature and name, its packed
    length, its size and its CRC-32 (:class:`zipfile.BadZipFile` or :class:`EOFError` otherwise). Any other
    member (stored, bzip2, lzma, encrypted) and every member without ISA-L go through ``zipfile``."""
    if info.compress_type != zipfile.ZIP_DEFLATED or info.flag_bits & _ZIP_ENCRYPTED or _zlib is zlib:
        return zf.read(info)
    try:
        signature, flags, n_name, n_extra = _ZIP_LOCAL_HEADER.unpack_from(data, info.header_offset)
    except struct.error:
        raise EOFError(f"the local header of {info.filename} is cut short") from None
    if signature != ZIP_MAGIC:
        raise zipfile.BadZipFile(f"Bad magic number for file header of {info.filename}")
    name_at = info.header_offset + _ZIP_LOCAL_HEADER.size
    local_name = data[name_at:name_at + n_name].decode(
        "utf-8" if flags & _ZIP_UTF8_NAME else "cp437", errors="replace")
    if local_name != info.orig_filename:
        raise zipfile.BadZipFile(f"File name in directory {info.orig_filename!r} and header {local_name!r} differ.")
    start = name_at + n_name + n_extra
    packed = memoryview(data)[start:start + info.compress_size]
    if len(packed) < info.compress_size:
        raise EOFError(f"{info.filename} is cut short ({len(packed)} of {info.compress_size} packed bytes)")
    inflate = _zlib.decompressobj(-_zlib.MAX_WBITS)             # raw deflate: no zlib or gzip header
    out = inflate.decompress(packed, info.file_size + 1)        # one byte over the size it declares: a lie shows
    if not inflate.eof or len(out) != info.file_size:
        raise zipfile.BadZipFile(f"{info.filename} does not unpack to the {info.file_size} bytes it declares")
    if _zlib.crc32(out) != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")
    return out


def _from_bytes(data: bytes, name: str) -> Source:
    if data.startswith(GZIP_MAGIC):
        data = gunzip(data, name=name)
    if data.startswith(ZIP_MAGIC):
        member = None
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                total = sum(i.file_size for i in zf.infolist())
                if total > MAX_DECOMPRESSED_BYTES:
                    raise FormatError(f"unpacks to {total} bytes, more than {MAX_DECOMPRESSED_BYTES}",
                                      source=name)
                files: dict[str, bytes] = {}
                for info in zf.infolist():
                    if info.is_dir() or PurePosixPath(info.filename).name.startswith(".") \
                            or "__MACOSX" in info.filename:
                        continue
                    member = info.filename
                    files[member] = _unzip_member(zf, info, data)
        except FormatError:
            raise
        except NotImplementedError as exc:       # zipfile: "That compression method is not supported"
            raise FormatError(f"is a zip archive packed with a method bump cannot unpack ({exc}); zip it again "
                              "with the standard (deflate) method", source=name) from exc
        except RuntimeError as exc:              # (after its subclass NotImplementedError)
            # zipfile: "File <ZipInfo ...> is encrypted, password required for extraction"
            raise FormatError(f"is a password-protected zip archive ({member or 'a member'} is encrypted); export "
                              "it again without a password", source=name, field=member) from exc
        except (zipfile.BadZipFile, zlib.error, _zlib.error, lzma.LZMAError, OSError, EOFError) as exc:
            # a damaged member shows only when it is unpacked: bad CRC (BadZipFile), corrupt deflate, bzip2
            # (OSError) or lzma data, or a member cut short (EOFError)
            raise FormatError(f"is a damaged zip archive ({type(exc).__name__}: {exc}); export it again",
                              source=name, field=member) from exc
        if not files:
            raise FormatError("is an empty zip archive", source=name)
        return Source(name, files, single=False)
    return Source(name, {PurePosixPath(name).name or "data": data}, single=True)
