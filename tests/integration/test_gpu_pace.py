"""Encoding at the hardware's pace, with the precision recorded: parallel loading (the same cache
for any number of workers), batches bounded by padded audio, out-of-memory halving, the
precision flag and its measured cost, and (only where a GPU exists) GPU against CPU."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from sklearn.neighbors import NearestNeighbors

from dacviz_app.precompute import config as precompute_config
from dacviz_app.precompute import encode_run, pipeline
from dacviz_app.precompute.audio import load_clip
from dacviz_app.cache import open_cache
from dacviz_app.precompute.dac_encode import encode_batch, load_dac, resolve_weights
from dacviz_app.precompute.loading import padded_batches
from dacviz_app.embedding.neighbours import cosine_knn
from dacviz_app.precompute.sources import select_clips

from conftest import copy_subset, run_precompute, tone, write_bad_files

NO_GPU = "no CUDA device here (CI and the development machines have none): bench/gpu_check.sh runs it on one"


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under a cache, by relative path; the manifest without its run-specific
    'created' and 'command'."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == "manifest.json":
            manifest = json.loads(data)
            manifest.pop("created"), manifest.pop("command")
            data = json.dumps(manifest, sort_keys=True).encode()
        out[str(path.relative_to(root))] = data
    return out


def test_the_cache_is_byte_identical_with_0_and_2_loader_workers(demo_wavs, tmp_path):
    source = copy_subset(demo_wavs, tmp_path / "clips", words=("one", "two"), speakers=3)
    bad = write_bad_files(source / "junk")
    caches = {}
    for workers in (0, 2):
        out = tmp_path / f"w{workers}"
        proc = run_precompute(str(source), "--untrained", "--out", str(out), "--workers", str(workers),
                              "--chunk-size", "5", "--depths", "2", "--reconstruct", "1",
                              "--max-seconds", "3")  # long.wav (4 s) is one of the bad kinds
        assert proc.returncode == 0, proc.stderr
        caches[workers] = tree_bytes(out)
    assert caches[0].keys() == caches[2].keys()
    differ = [name for name in caches[0] if caches[0][name] != caches[2][name]]
    assert differ == []
    skipped = {Path(item["source"]).name for item in json.loads(caches[2]["skipped.json"])}
    assert skipped == {name for name, outcome in bad.items() if outcome != "encoded"}  # via the workers
    assert open_cache(tmp_path / "w2").n_clips == 6 + sum(o == "encoded" for o in bad.values())


def test_batches_are_bounded_by_padded_audio_not_by_a_clip_count():
    hop = 512
    lengths = [16000] * 6 + [480000] * 3 + [8000]  # 1 s, 30 s, 0.5 s at 16 kHz
    batches = padded_batches(lengths, max_samples=16 * 16000, max_clips=256, hop=hop)
    assert sorted(r for b in batches for r in b) == list(range(10))
    for batch in batches:
        longest = max(-(-lengths[r] // hop) * hop for r in batch)
        assert len(batch) == 1 or len(batch) * longest <= 16 * 16000
    assert [len(b) for b in batches] == [7, 1, 1, 1]  # short clips together, each 30 s clip alone
    assert padded_batches(lengths, 10**9, max_clips=4, hop=hop)[0] == [9, 0, 1, 2]


def test_an_out_of_memory_batch_is_halved_and_the_run_goes_on(demo_wavs, tmp_path, monkeypatch):
    source = copy_subset(demo_wavs, tmp_path / "clips", words=("one", "two"), speakers=4)
    sf.write(source / "two" / "long.wav", tone(1.5, 16000), 16000, subtype="PCM_16")
    clips = select_clips(source, None, None, 42)
    lengths = [len(load_clip(c.path, 16000, 30).audio) for c in clips]
    too_big = int(np.argmax(lengths))  # the long clip fails even alone
    assert Path(clips[too_big].path).name == "long.wav" and lengths.count(lengths[too_big]) == 1
    real = encode_run.encode_batch
    calls = []

    def small_device(model, audios, device, **kwargs):
        calls.append(len(audios))
        if len(audios) > 2 or any(len(a) == lengths[too_big] for a in audios):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, audios, device, **kwargs)

    monkeypatch.setattr(encode_run, "encode_batch", small_device)
    said = []
    config = precompute_config.PrecomputeConfig(out=tmp_path / "cache", model_type="16khz",
                                       weights=resolve_weights("16khz", None, True, 42),
                                       batch_size=8, batch_seconds=16.0)
    summary = pipeline.run_precompute(clips, config, say=said.append, progress=False)
    assert calls[:2] == [8, 4] and max(calls[2:]) <= 2  # halved: 8 -> 4 -> 2 (-> 1), and kept
    assert any("out of memory on cpu at 8 clips" in line and "at most 4 clips" in line for line in said)
    assert summary.n_encoded == len(clips) - 1 and summary.n_skipped == 1
    cache = open_cache(tmp_path / "cache")
    assert "out of memory on cpu even alone" in cache.skipped[0]["reason"]
    assert cache.skipped[0]["source"] == clips[too_big].path
    assert not (tmp_path / "cache" / "audio" / f"{too_big:07d}.wav").exists()


def test_a_faster_precision_is_recorded_with_its_measured_cost(demo_wavs, tmp_path):
    """bf16 + a compiled encoder on the CPU (tf32 needs a GPU): the manifest, the stored fp32
    sample, numbers recomputable with numpy/scikit-learn, the summary and the app header."""
    source = copy_subset(demo_wavs, tmp_path / "clips", words=("one", "two", "yes"), speakers=4)
    out = tmp_path / "cache"
    proc = run_precompute(str(source), "--untrained", "--out", str(out), "--precision", "bf16",
                          "--compile", "--depths", "--reconstruct", timeout=900)
    assert proc.returncode == 0, proc.stderr
    cache = open_cache(out)
    settings = cache.encode_settings
    assert settings["precision"] == "bf16" and settings["compile"] is True
    assert settings["device"] == "cpu" and settings["torch"] == torch.__version__
    check = settings["agreement"]
    with np.load(out / "arrays" / "precision_reference.npz") as data:
        ids, reference = data["ids"], data["z"]
    assert list(ids) == list(range(cache.n_clips)) and check["n"] == cache.n_clips
    z = np.asarray(cache.embedding("z"), np.float64)[ids]
    relative = np.linalg.norm(z - reference, axis=1) / np.linalg.norm(reference, axis=1)
    assert check["max_relative_error"] == pytest.approx(relative.max(), rel=1e-6)
    assert 0 < check["max_relative_error"]  # bf16 is not fp32
    k = check["k"]

    def knn(x):
        return NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(x).kneighbors(x)[1][:, 1:]
    shared = [len(set(a) & set(b)) / k for a, b in zip(knn(z), knn(reference.astype(np.float64)))]
    assert check["knn_agreement"] == pytest.approx(np.mean(shared), abs=1e-9)
    # the fp32 reference is what a plain fp32 run gives
    plain = run_precompute(str(source), "--untrained", "--out", str(tmp_path / "fp32"), "--depths",
                           "--reconstruct")
    assert plain.returncode == 0, plain.stderr
    fp32 = open_cache(tmp_path / "fp32")
    assert fp32.encode_settings["precision"] == "fp32" and fp32.encode_settings["agreement"] is None
    assert not (tmp_path / "fp32" / "arrays" / "precision_reference.npz").exists()
    np.testing.assert_allclose(reference, fp32.embedding("z"), rtol=1e-4, atol=1e-6)
    # said in the summary and in the app's header
    assert "encoder       : bf16 + compile on cpu" in proc.stdout
    assert f"{k}-NN agreement with fp32 {check['knn_agreement']:.2f}" in proc.stdout
    from dacviz_app.viewer.app import create_app

    page = json.dumps(create_app(out).layout.to_plotly_json(), default=str)
    assert f"bf16 + compile \\u00b7 cpu \\u00b7 {k}-NN vs fp32 {check['knn_agreement']:.2f}" in page


def test_a_compiled_encoder_is_not_recompiled_for_each_padded_length():
    """Sorted batches differ in padded length from one to the next: the padding masks must not
    make torch.compile build a graph per length (it falls back to eager after 8)."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    model = load_dac("16khz", resolve_weights("16khz", None, True, 42), "cpu")
    model.encoder = torch.compile(model.encoder, dynamic=True, backend="eager")  # tracing only
    rng = np.random.default_rng(0)
    for longest in (8000, 9000, 12000, 13000, 7000, 16000, 11000, 9500, 15000, 6000):
        clips = [rng.standard_normal(longest - 700 * j).astype(np.float32) * 0.1 for j in range(3)]
        encode_batch(model, clips, "cpu")
    assert counters["stats"]["unique_graphs"] == 1
    torch._dynamo.reset()


def test_tf32_off_a_gpu_is_refused_before_any_work(demo_wavs, tmp_path):
    source = copy_subset(demo_wavs, tmp_path / "clips", words=("one",), speakers=5)
    proc = run_precompute(str(source), "--untrained", "--out", str(tmp_path / "c"), "--device", "cpu",
                          "--precision", "tf32")
    assert proc.returncode == 2 and "tf32 is a mode of NVIDIA GPUs" in proc.stderr
    assert not (tmp_path / "c").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_gpu_fp32_matches_cpu_fp32(demo_wavs):
    """The same clips in true fp32 on the GPU and the CPU: pooled z within 1e-3 relative, the
    neighbour search on the GPU equal to the CPU's."""
    from dacviz_app.precompute.precision import precision_mode

    files = sorted(demo_wavs.rglob("*.wav"))[:64]
    import soundfile as sf
    audios = [sf.read(f, dtype="float32")[0] for f in files]
    weights = resolve_weights("16khz", None, True, 42)
    out = {}
    for device in ("cpu", "cuda"):
        model = load_dac("16khz", weights, device)
        with precision_mode("fp32", device):
            out[device] = np.concatenate([encode_batch(model, audios[i:i + 16], device)["z"]
                                          for i in range(0, len(audios), 16)])
    relative = np.linalg.norm(out["cuda"] - out["cpu"], axis=1) / np.linalg.norm(out["cpu"], axis=1)
    assert relative.max() < 1e-3, relative.max()
    x = np.random.default_rng(0).standard_normal((5000, 1024)).astype(np.float32)
    cpu_index, cpu_distance = cosine_knn(x, 20)
    with precision_mode("fp32", "cuda"):
        gpu_index, gpu_distance = cosine_knn(x, 20, device="cuda")
    assert (gpu_index == cpu_index).mean() > 0.999
    np.testing.assert_allclose(gpu_distance, cpu_distance, atol=1e-5)
