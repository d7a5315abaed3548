"""A researcher's loop: a finished cache rerun with other depths, another perplexity, another
encoder or fewer depths computes only what the change touches (read from the run's summary and
from the files' modification times), the app opens the cache at every step of it, and the end
is the cache a single run with the last settings builds, byte for byte."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from conftest import ROOT, copy_subset, precompute_argv, run_precompute
from dacviz_app.cache import CacheError, open_cache
from dacviz_testkit import cache_files

RUN_FILES = {"manifest.json", "plan.json", "inputs.json"}  # every run that changes a setting writes these


def _times(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


def _computed(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("computed"))


def _rerun_opening_the_cache(out: Path, argv: list[str]) -> tuple[str, set[str], int]:
    """Run precompute; after each line it prints, open the cache as the app does (the run goes
    on meanwhile). Returns (stdout, the files written or removed, how many opens succeeded)."""
    before = _times(out)
    proc = subprocess.Popen(precompute_argv("--no-progress", *argv), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lines, opened = [], 0
    for line in proc.stdout:
        lines.append(line)
        try:  # raises if the cache cannot be opened at this point of the run
            open_cache(out)
        except CacheError:  # opened in the instant the manifest was replaced and a dropped
            open_cache(out)  # representation's files removed: the next open reads the new one
        opened += 1
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    after = _times(out)
    changed = {f for f in set(before) | set(after) if before.get(f) != after.get(f)}
    return "".join(lines), changed, opened


def test_a_rerun_computes_only_what_its_change_touches_and_ends_as_a_fresh_build(demo_wavs, tmp_path):
    src = copy_subset(demo_wavs, tmp_path / "src", words=("zero", "one"), speakers=5)
    common = [str(src), "--untrained", "--chunk-size", "4"]
    base = [*common, "--encoders", "mfcc"]
    out = tmp_path / "cache"
    first = run_precompute(*base, "--out", str(out), "--depths", "2")
    assert first.returncode == 0, first.stderr

    # another depth: its latent from the stored codes, its views and scores; nothing re-encoded
    stdout, changed, opened = _rerun_opening_the_cache(out, [*base, "--out", str(out), "--depths", "2", "3"])
    assert "(0 encoded in this run)" in stdout and opened > 10
    assert "z_q3 from the stored codes" in stdout
    rep_files = {f.split("/")[1] for f in changed if f.startswith("arrays/") and f.count("/") == 2}
    assert rep_files == {"z_q3"}, changed
    assert not any(f.startswith("audio/") for f in changed)
    assert changed - RUN_FILES - {f for f in changed if f.startswith("arrays/z_q3/")} \
        == {"metrics.json", "probes.json"}, changed
    assert _computed(stdout).startswith("computed      : embedding z_q3; knn z_q3;")
    assert open_cache(out).has_representation("z_q3")

    # another perplexity: only the t-SNE views and what scores them
    stdout, changed, _ = _rerun_opening_the_cache(
        out, [*base, "--out", str(out), "--depths", "2", "3", "--perplexity", "2"])
    arrays = {f for f in changed if f.startswith("arrays/")}
    assert arrays and all(Path(f).stem in ("tsne2", "tsne3") for f in arrays), arrays
    assert changed - RUN_FILES - arrays == {"metrics.json"}, changed
    assert "embedding" not in _computed(stdout) and "knn" not in _computed(stdout)
    info = json.loads((out / "arrays" / "z" / "tsne2.json").read_text())
    assert info["perplexity"] == 2

    # another encoder: only it encodes, from the cache's own audio; the others' files stay
    stdout, changed, _ = _rerun_opening_the_cache(
        out, [*common, "--encoders", "resemblyzer", "--out", str(out), "--depths", "2", "3",
              "--perplexity", "2"])
    assert "encoding again from the cache's audio: resemblyzer" in stdout
    assert {f.split("/")[1] for f in changed if f.startswith("arrays/") and f.count("/") == 2} \
        == {"resemblyzer"}, changed
    assert not any(f.startswith("audio/") for f in changed)
    assert open_cache(out).has_representation("resemblyzer")

    # a depth dropped: its files go, nothing is computed but the geometry over the representations
    final = [*common, "--encoders", "resemblyzer", "--depths", "3", "--perplexity", "2"]
    stdout, changed, _ = _rerun_opening_the_cache(out, [*final, "--out", str(out)])
    assert not (out / "arrays" / "z_q2").exists()
    assert _computed(stdout) == "computed      : geometry"
    assert not open_cache(out).has_representation("z_q2")

    # the same as one run with the last settings
    fresh = tmp_path / "fresh"
    built = run_precompute(*final, "--out", str(fresh))
    assert built.returncode == 0, built.stderr
    assert cache_files(out) == cache_files(fresh)


def test_other_clips_still_ask_for_overwrite_and_say_which(demo_wavs, tmp_path):
    src = copy_subset(demo_wavs, tmp_path / "src", words=("zero", "one"), speakers=3)
    out = tmp_path / "cache"
    assert run_precompute(str(src), "--untrained", "--encoders", "mfcc", "--out", str(out)).returncode == 0
    extra = copy_subset(demo_wavs, src, words=("yes",), speakers=1)
    added = next((extra / "yes").glob("*.wav"))
    proc = run_precompute(str(src), "--untrained", "--encoders", "mfcc", "--out", str(out))
    assert proc.returncode == 2
    assert "1 source file(s) added" in proc.stderr and added.name in proc.stderr
    assert "--overwrite" in proc.stderr


def test_the_progress_bar_moves_per_batch_not_per_chunk(demo_wavs, tmp_path):
    src = copy_subset(demo_wavs, tmp_path / "src", words=("zero", "one"), speakers=4)
    proc = subprocess.run(precompute_argv(str(src), "--untrained", "--encoders", "mfcc", "--chunk-size", "256",
                                          "--batch-size", "2", "--out", str(tmp_path / "cache")),
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    counts = {int(m.group(1)) for m in re.finditer(r"encoding:\s+\d+%\|[^|]*\|\s*(\d+)/8", proc.stderr)}
    # one chunk of 8 clips, batches of 2: the bar shows the clips of each batch as it ends
    assert {2, 4, 6, 8} <= counts, proc.stderr[-2000:]
    assert re.search(r"clip/s|s/clip", proc.stderr)


def test_a_cache_made_before_the_quantizer_tables_gets_them_from_the_same_command(demo_wavs, tmp_path):
    """The same command again on a finished cache without the quantizer tables (as one made
    before paths): only the tables are written, and the cache then draws paths."""
    from dacviz_app.explore.paths import clip_path, path_problem

    src = copy_subset(demo_wavs, tmp_path / "src", words=("zero", "one"), speakers=4)
    argv = [str(src), "--untrained", "--encoders", "mfcc", "--depths", "2", "--out", str(tmp_path / "cache")]
    assert run_precompute(*argv).returncode == 0
    out = tmp_path / "cache"
    (out / "arrays" / "quantizer.npz").unlink()
    inputs = json.loads((out / "inputs.json").read_text())
    del inputs["keys"]["quantizer"]
    (out / "inputs.json").write_text(json.dumps(inputs))
    assert "no frame codes or quantizer tables" in path_problem(open_cache(out), "z")
    before, metrics = _times(out), (out / "metrics.json").read_bytes()
    again = run_precompute(*argv)
    assert again.returncode == 0, again.stderr
    assert _computed(again.stdout).split(":", 1)[1].strip() == "quantizer", again.stdout
    changed = {f for f, t in _times(out).items() if before.get(f) != t}
    assert changed - RUN_FILES - {"metrics.json"} == {"arrays/quantizer.npz"}, changed
    assert (out / "metrics.json").read_bytes() == metrics  # written again, the same bytes
    cache = open_cache(out)
    assert path_problem(cache, "z") is None and clip_path(cache, 0, "z")["n_frames"] == len(cache.frame_codes(0))
