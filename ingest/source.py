"""A uniform view of what a user hands us: a file, a folder, a zip, or bytes.

Readers see a :class:`Source`: a name for messages and a flat set of members (one member for a plain
file or bytes; the files inside for a folder or zip). Gzip is undone here, once.
"""

from __future__ import annotations

import io
import lzma
import zipfile
import zlib
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


@dataclass
class Source:
    """Input bytes by member name. ``members`` maps a POSIX-style relative path to its loader."""

    name: str
    members: dict[str, bytes] = field(default_factory=dict)
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
    path = Path(src)
    label = name or str(path)
    if path.is_dir():
        files = {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*"))
                 if p.is_file() and not p.name.startswith(".")}
        if not files:
            raise FormatError("is an empty folder; point at a phone export or a trace file", source=label)
        return Source(label, files, single=False)
    if not path.exists():
        raise FormatError("does not exist; check the path", source=label)
    return _from_bytes(path.read_bytes(), label)


def _from_bytes(data: bytes, name: str) -> Source:
    if data.startswith(GZIP_MAGIC):
        data = gunzip(data, name=name)
    if data.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                total = sum(i.file_size for i in zf.infolist())
                if total > MAX_DECOMPRESSED_BYTES:
                    raise FormatError(f"unpacks to {total} bytes, more than {MAX_DECOMPRESSED_BYTES}",
                                      source=name)
                files = {i.filename: zf.read(i) for i in zf.infolist()
                         if not i.is_dir() and not PurePosixPath(i.filename).name.startswith(".")
                         and "__MACOSX" not in i.filename}
        except FormatError:
            raise
        except NotImplementedError as exc:       # zipfile: "That compression method is not supported"
            raise FormatError(f"is a zip archive packed with a method bump cannot unpack ({exc}); zip it again "
                              "with the standard (deflate) method", source=name) from exc
        except RuntimeError as exc:              # (after its subclass NotImplementedError)
            # zipfile: "File ... is encrypted, password required for extraction"
            raise FormatError(f"is a password-protected zip archive ({exc}); export it again without a password",
                              source=name) from exc
        except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, EOFError) as exc:
            # a damaged member shows only when it is unpacked: bad CRC (BadZipFile), corrupt deflate, bzip2
            # (OSError) or lzma data, or a member cut short (EOFError)
            raise FormatError(f"is a damaged zip archive ({type(exc).__name__}: {exc}); export it again",
                              source=name) from exc
        if not files:
            raise FormatError("is an empty zip archive", source=name)
        return Source(name, files, single=False)
    return Source(name, {PurePosixPath(name).name or "data": data}, single=True)
