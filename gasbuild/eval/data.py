"""The labelled data an eval reads: ``DIR/<modality>/<class>/...``, and its digest.

``class`` is ``real``, ``synthetic`` or ``semisynthetic`` (the benchmark's media types; labels
are binary: real is 0, the other two 1). Inside a class folder, samples may sit in any
sub-folders (reported per folder). A sample is an image file (image), a video file or a folder
holding frame images (video), or an audio file (audio). Hidden files and files of other types
are ignored. A missing modality folder, or a class folder without samples, is an error; a
modality needs at least one class folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from gasbuild.errors import UserError, display_path
from gasbuild.eval.media import EXTENSIONS, IMAGE_EXTENSIONS
from gasbuild.eval.metrics import LABELS
from gasbuild.submission import Modality

CLASSES = tuple(LABELS)
LAYOUT_HINT = (
    "lay data out as DIR/<modality>/<real|synthetic|semisynthetic>/... (`gasbuild eval --help`)"
)


class DataError(UserError):
    """The data directory does not have the layout eval reads."""


@dataclass(frozen=True)
class Sample:
    """One file (or frame folder) to score, with the class folder it came from."""

    path: Path
    klass: str
    folder: str  # relative to the class folder; "." for its top level

    @property
    def label(self) -> int:
        return LABELS[self.klass]


@dataclass(frozen=True)
class ClassFolder:
    """A class folder's samples: batched on their own, as the benchmark batches a dataset."""

    klass: str
    path: Path
    samples: tuple[Sample, ...]


def discover(data_dir: Path, modality: Modality, limit: int | None = None) -> list[ClassFolder]:
    """The class folders under ``data_dir/modality``, each with its samples in sorted order."""
    root = data_dir / modality
    if not root.is_dir():
        hint = LAYOUT_HINT
        if any((data_dir / klass).is_dir() for klass in CLASSES):
            hint = f"{display_path(data_dir)} holds class folders: pass the folder above it"
        raise DataError(
            f"{display_path(root)}: no {modality} folder in the data directory", hint=hint
        )
    present = {p.name: p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    unknown = sorted(set(present) - set(CLASSES))
    if unknown:
        raise DataError(
            f"{display_path(root)}: unknown class folder {', '.join(unknown)}",
            hint="class folders are real, synthetic and semisynthetic",
        )
    if not present:
        raise DataError(f"{display_path(root)}: no class folder", hint=LAYOUT_HINT)
    folders = []
    for klass in CLASSES:
        if klass not in present:
            continue
        samples = [
            Sample(p, klass, _folder(p, present[klass])) for p in _samples(present[klass], modality)
        ]
        if not samples:
            kinds = ", ".join(sorted(EXTENSIONS[modality]))
            raise DataError(
                f"{display_path(present[klass])}: no {modality} sample in this class folder",
                hint=f"add files ({kinds})" + (" or frame folders" if modality == "video" else ""),
            )
        folders.append(ClassFolder(klass, present[klass], tuple(samples[:limit])))
    return folders


def _folder(sample: Path, class_dir: Path) -> str:
    return sample.parent.relative_to(class_dir).as_posix()


def _samples(class_dir: Path, modality: Modality) -> list[Path]:
    found: list[Path] = []
    _walk(class_dir, modality, found)
    return sorted(found)


def _walk(folder: Path, modality: Modality, found: list[Path]) -> None:
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    if modality == "video" and folder.name and _is_frame_folder(entries):
        found.append(folder)
        return
    for entry in entries:
        if entry.is_dir():
            _walk(entry, modality, found)
        elif entry.suffix.lower() in EXTENSIONS[modality]:
            found.append(entry)


def _is_frame_folder(entries: list[Path]) -> bool:
    """A folder of frames holds images and no sub-folder."""
    return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in entries) and not any(
        p.is_dir() for p in entries
    )


def sample_files(folders: Iterable[ClassFolder]) -> list[Path]:
    """Every file a set of samples reads (a frame folder contributes its frames)."""
    files: list[Path] = []
    for folder in folders:
        for sample in folder.samples:
            if sample.path.is_dir():
                files.extend(sorted(p for p in sample.path.iterdir() if p.is_file()))
            else:
                files.append(sample.path)
    return files


FileDigest = Callable[[Path], str]


def data_digest(root: Path, files: Iterable[Path], file_digest: FileDigest) -> str:
    """One digest of the samples' relative paths and contents (the cache key's data part)."""
    entries = sorted((p.relative_to(root).as_posix(), file_digest(p)) for p in files)
    return hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode()).hexdigest()
