"""Where clips come from: a Speech Commands tree, any folder-per-label tree, or a CSV manifest.

Every source yields the same thing: a deterministic list of ClipSource (path, label, speaker,
extra metadata), sorted by (label, path) after seeded sampling.
"""
from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

SPEECH_COMMANDS_NAME = re.compile(r"^(?P<speaker>.+?)_nohash_(?P<n>\d+)\.\w+$")


class SourceError(Exception):
    """A source that cannot be used at all (missing, empty selection, unknown word)."""


@dataclass(frozen=True, slots=True)  # slots: a million clips are ~100 MB smaller
class ClipSource:
    """One clip to encode. ``extra`` holds further metadata columns (CSV), as strings."""

    path: str
    label: str
    speaker: str = ""
    extra: tuple[tuple[str, str], ...] = field(default=())


def speaker_from_name(name: str) -> str:
    """Speech Commands speaker id from ``<speaker>_nohash_<n>.wav``, else ''."""
    match = SPEECH_COMMANDS_NAME.match(name)
    return match.group("speaker") if match else ""


def _sample(items: list, per_label: int | None, rng: random.Random, key=None) -> list:
    """``per_label`` items drawn with ``rng`` and returned in sorted order; all if None."""
    if per_label is None or per_label >= len(items):
        return list(items)
    return sorted(rng.sample(items, per_label), key=key)


def _inside(path: Path, folders: tuple[Path, ...]) -> bool:
    """True when ``path`` (resolved) is one of ``folders`` (resolved) or lies under one."""
    real = path.resolve()
    return any(real == f or f in real.parents for f in folders)


def folder_tree(root: Path, words: list[str] | None, per_word: int | None,
                seed: int, exclude: tuple[Path, ...] = ()) -> list[ClipSource]:
    """ROOT/<label>/**/<file>: the label is the top folder's name (Speech Commands layout
    included; folders starting with '_' or '.', like ``_background_noise_``, are ignored).

    Every regular file under a label folder is taken, so a non-audio file is reported as
    skipped rather than silently ignored. The speaker is parsed from Speech Commands names.
    ``per_word`` clips per label are sampled with ``random.Random(seed)``. Files inside the
    ``exclude`` folders (the cache being written, when it lies inside ROOT) are not clips.
    """
    exclude = tuple(Path(f).resolve() for f in exclude)
    labels = sorted(p.name for p in root.iterdir()
                    if p.is_dir() and not p.name.startswith(("_", ".")) and not _inside(p, exclude))
    if not labels:
        raise SourceError(f"{root}: no label folders found (expected ROOT/<label>/<clip>.wav).")
    if words:
        unknown = [w for w in words if w not in labels]
        if unknown:
            raise SourceError(f"unknown word(s) {', '.join(unknown)} in {root}; available: "
                              f"{', '.join(labels[:40])}{' ...' if len(labels) > 40 else ''}")
        labels = list(dict.fromkeys(words))
    rng = random.Random(seed)
    clips: list[ClipSource] = []
    for label in labels:
        files = sorted(str(p) for p in (root / label).rglob("*")
                       if p.is_file() and not p.name.startswith(".") and not _inside(p, exclude))
        for path in _sample(files, per_word, rng):
            clips.append(ClipSource(path=path, label=label, speaker=speaker_from_name(Path(path).name)))
    return clips


def csv_manifest(csv_path: Path, words: list[str] | None, per_word: int | None,
                 seed: int) -> list[ClipSource]:
    """A CSV with columns ``path,label`` and optionally ``speaker`` and any others (kept as
    metadata). Relative paths are relative to the CSV's folder. Read row by row (a million
    rows hold their clips, not the rows too). A column named twice, or a file listed on more
    than one row, is refused: one clip is one file with one label."""
    by_label: dict[str, list[ClipSource]] = {}
    first_line: dict[str, int] = {}  # each clip's path -> the line listing it
    repeated: dict[str, list[int]] = {}  # a path listed again -> every line listing it
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            fields = _header(csv_path, next(reader, []))
            extra = [(i, name) for i, name in enumerate(fields)
                     if name and name not in ("path", "label", "speaker")]
            column = {name: i for i, name in enumerate(fields) if name}
            for row in reader:
                if not row:
                    continue  # a blank line, as DictReader skips it
                clip = _row_clip(csv_path, row, column, extra)
                line = first_line.setdefault(clip.path, reader.line_num)
                if line != reader.line_num:
                    repeated.setdefault(clip.path, [line]).append(reader.line_num)
                by_label.setdefault(clip.label, []).append(clip)
        except csv.Error as err:
            raise SourceError(f"{csv_path}, line {reader.line_num}: not readable as CSV ({err}).")
        except UnicodeDecodeError as err:
            raise SourceError(f"{csv_path}: not UTF-8 text ({err.reason} at byte {err.start}); "
                              f"save it as UTF-8.")
    if repeated:
        raise SourceError(_repeated_message(csv_path, repeated))
    if words:
        unknown = [w for w in words if w not in by_label]
        if unknown:
            raise SourceError(f"unknown word(s) {', '.join(unknown)} in {csv_path}; available: "
                              f"{', '.join(sorted(by_label)[:40])}")
    rng = random.Random(seed)
    clips: list[ClipSource] = []
    for label in (list(dict.fromkeys(words)) if words else sorted(by_label)):
        group = sorted(by_label[label], key=lambda c: c.path)
        clips.extend(_sample(group, per_word, rng, key=lambda c: c.path))
    return clips


def _header(csv_path: Path, fields: list[str]) -> list[str]:
    """The CSV's column names, once each, with 'path' and 'label' among them; else SourceError."""
    if "path" not in fields or "label" not in fields:
        raise SourceError(f"{csv_path}: needs the columns 'path' and 'label' (found: "
                          f"{', '.join(fields[:20]) or 'none'}).")
    for i, name in enumerate(fields):
        if name and name in fields[:i]:
            raise SourceError(f"duplicate column {name!r} in {csv_path} (columns "
                              f"{fields.index(name) + 1} and {i + 1} of its header); name each "
                              f"column once.")
    return fields


def _row_clip(csv_path: Path, row: list[str], column: dict[str, int],
              extra: list[tuple[int, str]]) -> ClipSource:
    """One CSV row as a clip (a short row's missing cells are empty, as in ``csv.DictReader``)."""
    def cell(i: int | None) -> str:
        return row[i] if i is not None and i < len(row) else ""

    path = Path(cell(column["path"]))
    if not path.is_absolute():
        path = csv_path.parent / path
    return ClipSource(path=str(path), label=cell(column["label"]).strip(),
                      speaker=cell(column.get("speaker")).strip() or speaker_from_name(path.name),
                      extra=tuple((name, cell(i)) for i, name in extra))


def _repeated_message(csv_path: Path, repeated: dict[str, list[int]], shown: int = 3,
                      lines: int = 5) -> str:
    """'clips.csv lists 1 file(s) on more than one row (duplicate rows): a.wav (5 times, lines
    2, 3, 4, 5, 6). ...': the first ``shown`` files, each with its first ``lines`` lines."""
    def where(numbers: list[int]) -> str:
        listed = ", ".join(map(str, numbers[:lines]))
        rest = f" and {len(numbers) - lines} more" if len(numbers) > lines else ""
        return f"{len(numbers)} times, lines {listed}{rest}"

    named = "; ".join(f"{path} ({where(numbers)})" for path, numbers in list(repeated.items())[:shown])
    more = f"; and {len(repeated) - shown:,} more file(s)" if len(repeated) > shown else ""
    return (f"{csv_path} lists {len(repeated):,} file(s) on more than one row (duplicate rows): "
            f"{named}{more}. A file is one clip with one label: list it once.")


def select_clips(source: Path, words: list[str] | None = None, per_word: int | None = None,
                 seed: int = 0, exclude: tuple[Path, ...] = ()) -> list[ClipSource]:
    """Resolve SOURCE (a folder tree or a ``.csv`` manifest) to its clip list; raises SourceError.
    ``exclude``: folders whose files are never clips (the output cache)."""
    source = Path(source)
    if not source.exists():
        raise SourceError(f"{source}: no such file or directory.")
    if source.is_file():
        if source.suffix.lower() != ".csv":
            raise SourceError(f"{source}: a file SOURCE must be a CSV manifest (path,label,...).")
        clips = csv_manifest(source, words, per_word, seed)
    elif source.is_dir():
        clips = folder_tree(source, words, per_word, seed, exclude)
    else:
        raise SourceError(f"{source}: neither a folder nor a regular file (a pipe or a device?).")
    if not clips:
        raise SourceError(f"{source}: the selection is empty (no clips found).")
    return clips
