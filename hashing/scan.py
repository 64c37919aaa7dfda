"""Walks files and folders and hashes every media file in them; the engine behind `hashguard hash`.

Produces plain dict records (the `--json` line shape): `path`, `signal_type`, `value`, `quality`
where it applies; a file that cannot be hashed gives a record with `error` and `error_code` and no
`value`, and the walk goes on: no problem with one file (too large, a decompression bomb, damaged,
an unexpected decoder failure) stops the others from being hashed. Never touches the network.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from hashing.media import ImageTooLarge
from hashing.signals import SIGNALS_FOR_MEDIA, UnusableMedia, pdq

UNREADABLE = "unreadable: damaged, or not a format this device can open"


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


def iter_files(paths: Iterable[Path]) -> Iterator[Path | Skipped]:
    """Files under `paths` in a stable order (folders recursively); a missing path is Skipped."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            yield path
        else:
            yield Skipped(path, "no such file or folder")


def hash_media_file(path: Path, kind: str, dihedral: bool = False) -> list[dict]:
    """All records for one media file: one per signal (or an error record per failed signal)."""
    records = []
    for signal_type in SIGNALS_FOR_MEDIA[kind]:
        base = {"path": str(path), "signal_type": signal_type.NAME}
        try:
            if signal_type is pdq:
                signals = pdq.hash_file(path, dihedral=dihedral)
            else:
                signals = signal_type.hash_file(path)
        except UnusableMedia as refused:
            records.append({**base, "error_code": refused.code, "error": refused.message})
            continue
        except ImportError as missing:  # e.g. tmkpy, an optional extra (`hashguard[video]`)
            records.append({**base, "error_code": "unavailable", "error": f"not installed: {missing}"})
            continue
        except ImageTooLarge as large:
            records.append({**base, "error_code": "too_large", "error": str(large)})
            continue
        except (MemoryError, Image.DecompressionBombError):
            records.append({**base, "error_code": "too_large",
                            "error": "too large to hash on this device"})
            continue
        except (UnidentifiedImageError, OSError, RuntimeError, ValueError) as broken:
            records.append({**base, "error_code": "unreadable", "error": _unreadable(broken)})
            continue
        except Exception as broken:  # noqa: BLE001 - a decoder's surprise is this file's problem
            records.append({**base, "error_code": "unreadable", "error": _unreadable(broken)})
            continue
        for index, signal in enumerate(signals):
            record = {**base, **signal.as_record()}
            if dihedral and signal_type is pdq:
                record["dihedral_index"] = index
            records.append(record)
    return records


def _unreadable(broken: BaseException) -> str:
    """One plain phrase; the decoder's own words only where they add something (they often
    repeat the path, which the line already names)."""
    detail = str(broken).strip()
    if not detail or "cannot identify image file" in detail or len(detail) > 120:
        return UNREADABLE
    return f"{UNREADABLE} ({detail})"
