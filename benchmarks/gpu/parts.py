"""Pack a folder of wheels into xz-compressed parts small enough to carry, and join them again.

    python benchmarks/gpu/parts.py pack .gpu/wheels .gpu/parts --part-mb 56
    python benchmarks/gpu/parts.py gather --from .gpu/parts --stash /tmp/prefkit-gpu-parts --out /tmp/prefkit-gpu-wheels

`pack` writes one tar stream of the folder, compressed as xz at preset 9 (what `xz -9` does), cut into parts
named `wheels.<set>.<k>-of-<n>.<part>`: `<set>` is the first 12 hex digits of the whole compressed
stream's SHA-256 and `<part>` the first 8 of the part's own, so every part says which set it belongs to, how
many there are and whether it arrived whole; no separate manifest has to travel. `gather` checks and copies
the parts it finds into a stash (parts may arrive over several calls, each with one part), and once the set
is complete joins them, checks the set's SHA-256 prefix and unpacks the tar; exit 3 and the missing part
names while it is incomplete, exit 2 naming a damaged part.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import lzma
import re
import shutil
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

PART_NAME = re.compile(
    r"^wheels\.(?P<set>[0-9a-f]{12})\.(?P<index>\d+)-of-(?P<count>\d+)\.(?P<digest>[0-9a-f]{8})$"
)
INCOMPLETE = 3
BLOCK = 1 << 20


@dataclass(frozen=True)
class Part:
    path: Path
    set_id: str
    index: int
    count: int
    digest: str


def parse_part(path: Path) -> Part | None:
    """The part a file name describes, or None for any other file."""
    match = PART_NAME.match(path.name)
    if match is None:
        return None
    return Part(path, match["set"], int(match["index"]), int(match["count"]), match["digest"])


def part_name(set_id: str, index: int, count: int, digest: str = "") -> str:
    """The part's file name; without `digest`, the prefix every copy of that part starts with."""
    width = len(str(count))
    return f"wheels.{set_id}.{index:0{width}d}-of-{count:0{width}d}" + (f".{digest}" if digest else "")


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def whole(part: Part) -> bool:
    return file_digest(part.path)[:8] == part.digest


class _PartWriter(io.RawIOBase):
    """A write-only stream that cuts what it is given into numbered files of at most `part_bytes`."""

    def __init__(self, folder: Path, part_bytes: int) -> None:
        self.folder, self.part_bytes = folder, part_bytes
        self.paths: list[Path] = []
        self.digest = hashlib.sha256()
        self.handle = None
        self.left = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data)
        self.digest.update(view)
        while view:
            if self.left == 0:
                self._next_file()
            chunk = view[: self.left]
            self.handle.write(chunk)
            self.left -= len(chunk)
            view = view[len(chunk) :]
        return len(data)

    def _next_file(self) -> None:
        if self.handle:
            self.handle.close()
        self.paths.append(self.folder / f".part-{len(self.paths) + 1:04d}.tmp")
        self.handle = open(self.paths[-1], "wb")
        self.left = self.part_bytes

    def close(self) -> None:
        if self.handle:
            self.handle.close()
            self.handle = None
        super().close()


def pack(source: Path, parts_dir: Path, part_bytes: int) -> list[Path]:
    """Tar `source` (as its folder name), xz it at preset 9, cut it into parts; return the part paths."""
    parts_dir.mkdir(parents=True, exist_ok=True)
    for old in parts_dir.iterdir():
        if parse_part(old) or old.name.endswith(".tmp"):
            old.unlink()
    writer = _PartWriter(parts_dir, part_bytes)
    with lzma.open(writer, "wb", format=lzma.FORMAT_XZ, preset=9) as compressed:
        with tarfile.open(fileobj=compressed, mode="w|") as archive:
            for path in sorted(source.iterdir()):
                archive.add(path, arcname=f"{source.name}/{path.name}")
    writer.close()
    set_id = writer.digest.hexdigest()[:12]
    named = []
    for index, path in enumerate(writer.paths, start=1):
        name = part_name(set_id, index, len(writer.paths), file_digest(path)[:8])
        named.append(path.rename(parts_dir / name))
    return named


def stash_parts(sources: list[Path], stash: Path) -> list[Part]:
    """Check every part found in `sources` and copy it into `stash` (kept there across calls); return all
    stashed parts. A part whose content does not match its name is refused, named."""
    stash.mkdir(parents=True, exist_ok=True)
    for source in sources:
        if not source.is_dir():
            continue
        for path in sorted(source.iterdir()):
            part = parse_part(path)
            if part is None or (stash / path.name).exists():
                continue
            if not whole(part):
                raise ValueError(
                    f"{path} is damaged (its SHA-256 does not start with {part.digest}): carry it again"
                )
            shutil.copyfile(path, stash / f".{path.name}.copying")
            (stash / f".{path.name}.copying").rename(stash / path.name)
    return [part for path in sorted(stash.iterdir()) if (part := parse_part(path))]


def newest_set(parts: list[Part]) -> tuple[str, int, dict[int, Part]]:
    """The set with the most parts on hand (ties: the most recently stashed); its count and parts by index."""
    if not parts:
        raise FileNotFoundError("no parts named wheels.<set>.<k>-of-<n>.<part> found")
    by_set: dict[str, list[Part]] = {}
    for part in parts:
        by_set.setdefault(part.set_id, []).append(part)
    set_id = max(by_set, key=lambda s: (len(by_set[s]), max(p.path.stat().st_mtime for p in by_set[s])))
    counts = {part.count for part in by_set[set_id]}
    if len(counts) != 1:
        raise ValueError(f"parts of set {set_id} disagree on how many there are: {sorted(counts)}")
    return set_id, counts.pop(), {part.index: part for part in by_set[set_id]}


def missing_parts(set_id: str, count: int, present: dict[int, Part]) -> list[str]:
    return [f"{part_name(set_id, index, count)}.*" for index in range(1, count + 1) if index not in present]


class _JoinedReader(io.RawIOBase):
    """Reads the parts one after the other as one stream, hashing what it reads."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = list(paths)
        self.handle = None
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while True:
            if self.handle is None:
                if not self.paths:
                    return 0
                self.handle = open(self.paths.pop(0), "rb")
            read = self.handle.readinto(buffer)
            if read:
                self.digest.update(memoryview(buffer)[:read])
                return read
            self.handle.close()
            self.handle = None


def unpack(set_id: str, parts: list[Path], out: Path) -> Path:
    """Join the parts in order, unpack the tar under `out`, check the SHA-256 prefix; return the folder."""
    target = out / f"set-{set_id}"
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    reader = _JoinedReader(parts)
    try:
        with lzma.open(io.BufferedReader(reader, BLOCK), "rb") as compressed:
            with tarfile.open(fileobj=compressed, mode="r|") as archive:
                archive.extractall(target, filter="data")
            while compressed.read(BLOCK):  # read to the end so every byte is hashed
                pass
        damaged = reader.digest.hexdigest()[:12] != set_id
    except (lzma.LZMAError, tarfile.TarError, EOFError):
        damaged = True
    if damaged:
        shutil.rmtree(target)
        raise ValueError(f"the joined parts of set {set_id} do not match its checksum: a part is damaged")
    (target / ".complete").write_text(set_id)
    return target


def gather(sources: list[Path], stash: Path, out: Path) -> tuple[str, Path | None, list[str]]:
    """Stash what arrived; when the newest set is complete, unpack it. Returns (set, folder or None, missing)."""
    set_id, count, present = newest_set(stash_parts(sources, stash))
    missing = missing_parts(set_id, count, present)
    if missing:
        return set_id, None, missing
    return set_id, unpack(set_id, [present[index].path for index in range(1, count + 1)], out), []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack", help="folder -> xz parts")
    packing.add_argument("source", type=Path)
    packing.add_argument("parts", type=Path)
    packing.add_argument("--part-mb", type=float, default=56.0, help="largest part in MB (10^6 bytes)")
    gathering = commands.add_parser("gather", help="parts (over one or more calls) -> unpacked folder")
    gathering.add_argument("--from", dest="sources", type=Path, action="append", required=True)
    gathering.add_argument("--stash", type=Path, required=True)
    gathering.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "pack":
        paths = pack(args.source, args.parts, int(args.part_mb * 1e6))
        for path in paths:
            print(f"{path}  ({path.stat().st_size / 1e6:.1f} MB)")
        return 0
    try:
        set_id, folder, missing = gather(args.sources, args.stash, args.out)
    except FileNotFoundError:
        where = ", ".join(str(source) for source in [*args.sources, args.stash])
        print(
            f"parts: none in {where}; build them with `check.sh prepare` where PyPI is reachable",
            file=sys.stderr,
        )
        return 2
    except ValueError as error:
        print(f"parts: {error}", file=sys.stderr)
        return 2
    if missing:
        print(
            f"parts: set {set_id} is incomplete, missing {len(missing)}: {' '.join(missing)} "
            f"(stashed in {args.stash}; bring the rest and run install again)",
            file=sys.stderr,
        )
        return INCOMPLETE
    print(f"{set_id} {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
