"""Encoders beside DAC: the interface, Resemblyzer's trained speaker encoder rebuilt from its
wheel's weights, a Hugging Face model from a local folder, and the choices on the command line."""
from __future__ import annotations

import numpy as np
import pytest

from dacviz_app.precompute import encoders
from dacviz_app.precompute.encoders import EncoderError, EncoderSpec


def tone(seconds: float, freq: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).normal(0, 0.01, len(t))
    return (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def test_resemblyzer_partial_windows_are_its_own():
    # compute_partial_slices of resemblyzer 0.1.4, by hand: 16 kHz, 10 ms frames, 1.6 s windows,
    # a new one every round(16000 / 1.3 / 160) = 77 frames, the last kept if it covers 75 %
    assert encoders.partial_slices(8000, 16000) == [(0, 160)]  # short: one window, zero-padded
    assert encoders.partial_slices(16000 * 3, 16000) == [(0, 160), (77, 237), (154, 314)]
    assert encoders.partial_slices(16000 * 3 + 5000, 16000)[-1] == (154, 314)  # 4th covers < 75 %
    loud = encoders.normalise_volume(np.full(100, 0.001, np.float32))
    assert 20 * np.log10(np.sqrt(np.mean(loud.astype(np.float64) ** 2))) == pytest.approx(-30, abs=1e-3)
    quiet_enough = np.full(100, 0.5, np.float32)
    assert encoders.normalise_volume(quiet_enough) is quiet_enough  # it only raises the volume
    assert not encoders.normalise_volume(np.zeros(10, np.float32)).any()  # silence stays silence


@pytest.mark.skipif(encoders.resemblyzer_weights() is None, reason="resemblyzer's wheel is not installed")
def test_the_speaker_encoder_gives_unit_vectors_that_tell_voices_apart():
    enc = encoders.make_encoder(EncoderSpec("resemblyzer"))
    assert (enc.name, enc.dim, enc.sample_rate, enc.trained) == ("resemblyzer", 256, 16000, True)
    record = enc.weights_record()
    assert record["sha256"] == encoders.sha256_file(encoders.resemblyzer_weights())
    clips = [tone(1.0, 140), tone(2.5, 140, seed=1), tone(1.0, 900), np.zeros(4000, np.float32)]
    vectors = enc.encode(clips)
    assert vectors.shape == (4, 256) and vectors.dtype == np.float32 and np.isfinite(vectors).all()
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5) and (vectors >= 0).all()
    same, other = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert same > other  # the same low hum at two lengths is closer than a high one
    # a batch gives what one clip at a time gives
    assert np.allclose(enc.encode(clips[2:3])[0], vectors[2], atol=1e-5)
    assert enc.describe()["weights"]["source"].startswith("resemblyzer 0.1.4")


def tiny_wav2vec2(folder) -> None:
    """A randomly initialised Wav2Vec2 small enough for CI, saved like a downloaded model."""
    transformers = pytest.importorskip("transformers")
    config = transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, vocab_size=12)
    transformers.Wav2Vec2Model(config).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(folder)


def test_a_hugging_face_model_from_a_folder_runs_through_the_interface(tmp_path):
    import torch

    folder = tmp_path / "w2v"
    tiny_wav2vec2(folder)
    enc = encoders.make_encoder(EncoderSpec("wav2vec2", str(folder)))
    assert (enc.name, enc.dim, enc.sample_rate, enc.trained) == ("wav2vec2", 32, 16000, True)
    clips = [tone(0.5, 200), tone(0.8, 600, seed=3)]
    vectors = enc.encode(clips)
    assert vectors.shape == (2, 32) and np.isfinite(vectors).all()
    # what it computes, by hand: the model's last hidden state, averaged over frames
    import transformers

    model = transformers.Wav2Vec2Model.from_pretrained(folder).eval()
    x = torch.from_numpy(clips[1])
    x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
    with torch.no_grad():
        expected = model(x[None]).last_hidden_state[0].mean(0).numpy()
    assert np.allclose(vectors[1], expected, atol=1e-4)
    layer = encoders.make_encoder(EncoderSpec("wav2vec2", str(folder), layer=1))
    with torch.no_grad():
        first = model(x[None], output_hidden_states=True).hidden_states[1][0].mean(0).numpy()
    assert np.allclose(layer.encode(clips[1:])[0], first, atol=1e-4)
    assert "hidden layer 1" in layer.title and layer.weights_record()["source"].endswith("layer 1")
    with pytest.raises(EncoderError, match="--layer 9: wav2vec2 has hidden layers 0..2"):
        encoders.make_encoder(EncoderSpec("wav2vec2", str(folder), layer=9))


def test_encoder_choices_say_what_is_wrong(tmp_path):
    present = encoders.available_built_in()
    assert encoders.parse_specs(None) == tuple(EncoderSpec(n) for n in present)
    assert encoders.parse_specs(["dac", "mfcc"]) == ()
    assert encoders.parse_specs(["dac", "w2v"], [f"w2v={tmp_path}"], layer=3) == (
        EncoderSpec("w2v", str(tmp_path), 3),)
    for names, paths, message in (
            (["whisper"], [], "--encoders whisper: unknown"),
            (["x"], ["x"], "write NAME=PATH"),
            (["Bad"], ["Bad=/tmp"], "write NAME=PATH"),
            (["mfcc"], ["mfcc=/tmp"], "the name 'mfcc' is taken"),
            (["z"], ["z=/tmp"], "the name 'z' is taken"),  # DAC's own arrays keep their names
            (["z_q3"], ["z_q3=/tmp"], "the name 'z_q3' is taken"),
            (["plan_index"], ["plan_index=/tmp"], "the name 'plan_index' is taken"),
            (["dac"], ["w=/tmp"], "add w to --encoders too")):
        with pytest.raises(EncoderError, match=message):
            encoders.parse_specs(names, paths)
    with pytest.raises(EncoderError, match="no Hugging Face model there.*bring your own weights"):
        encoders.make_encoder(EncoderSpec("w2v", str(tmp_path / "missing")))


def test_precompute_stores_a_hugging_face_model_as_one_more_representation(demo_wavs, tmp_path):
    """The CLI end to end with --encoder-path: the model's vectors are a representation with its
    own projections, neighbours and metrics, its weights recorded; other weights, another plan."""
    from conftest import copy_subset, run_precompute

    from dacviz_app.cache import open_cache

    folder = tmp_path / "w2v"
    tiny_wav2vec2(folder)
    clips = copy_subset(demo_wavs, tmp_path / "clips", words=("zero", "one"), speakers=4)
    out = tmp_path / "cache"
    proc = run_precompute(str(clips), "--untrained", "--out", str(out), "--depths", "--reconstruct",
                          "--encoders", "dac", "mfcc", "w2v", "--encoder-path", f"w2v={folder}")
    assert proc.returncode == 0, proc.stderr
    assert "encoders: dac (UNTRAINED), mfcc (no weights), w2v (32-D, trained)" in proc.stdout
    cache = open_cache(out)
    assert cache.representations == ["z", "codes_concat", "codes_mean", "mfcc", "w2v"]
    assert cache.encoders() == [("dac", False), ("mfcc", False), ("w2v", True)]
    entry = cache.manifest["representations"]["w2v"]
    assert entry["dim"] == 32 and entry["weights"]["sha256"] == encoders.make_encoder(
        EncoderSpec("w2v", str(folder))).weights_record()["sha256"]
    import soundfile as sf

    audio = [sf.read(str(cache.audio_path(i)), dtype="float32")[0] for i in range(cache.n_clips)]
    expected = encoders.make_encoder(EncoderSpec("w2v", str(folder))).encode(audio)
    stored = np.asarray(cache.embedding("w2v"), np.float64)
    # the stored vectors are its own (of the float audio; the cache's copies are 16-bit PCM)
    cosine = (stored * expected).sum(1) / np.linalg.norm(stored, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() > 0.9999
    assert cache.projection("w2v", "tsne2").shape == (cache.n_clips, 2)
    assert any(r["representation"] == "w2v" for r in cache.metrics["rows"])
    # a missing folder: one line, before any work; the other weights make another plan
    proc = run_precompute(str(clips), "--untrained", "--out", str(tmp_path / "other"),
                          "--encoders", "w2v", "--encoder-path", f"w2v={tmp_path / 'none'}")
    assert proc.returncode == 2 and "bring your own weights" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "other").exists()


def test_a_half_precision_checkpoint_runs_in_float32(tmp_path):
    """transformers loads a float16 checkpoint as float16; dacviz's encoders run in float32."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path / "half"
    tiny_wav2vec2(folder)
    transformers.Wav2Vec2Model.from_pretrained(folder).half().save_pretrained(folder)
    enc = encoders.make_encoder(EncoderSpec("half", str(folder)))
    vectors = enc.encode([tone(0.6, 300)])
    assert vectors.dtype == np.float32 and np.isfinite(vectors).all()


class Picky(encoders.Encoder):
    """An encoder that cannot take clips longer than a second (as a model out of memory)."""

    name, sample_rate, dim, trained, title, description = "picky", 16000, 3, True, "picky", "test"

    def weights_record(self) -> dict:
        return {"source": "test", "sha256": None}

    def encode(self, clips):
        if any(len(c) > self.sample_rate for c in clips):
            raise RuntimeError("out of memory")
        return np.asarray([[len(c), c.mean(), 1.0] for c in clips], np.float32)


def test_a_clip_an_encoder_beside_dac_cannot_take_costs_only_itself():
    from dacviz_app.precompute.encode_run import encode_beside

    audios = [tone(0.5, 200), tone(2.0, 200), tone(0.8, 300)]
    vectors, refused = encode_beside([Picky()], audios, 16000)
    assert list(refused) == [1] and "picky could not encode it: RuntimeError: out of memory" in refused[1]
    assert vectors["picky"][0, 0] == 8000 and vectors["picky"][2, 0] == 12800  # the others, in order
    vectors, refused = encode_beside([Picky()], [audios[0], audios[2]], 16000)
    assert refused == {} and vectors["picky"].shape == (2, 3)


def test_an_encoders_weights_are_part_of_the_plan(tmp_path):
    """Other weights in the same folder name make another plan (so no chunk of the old ones is
    reused); without encoders beside DAC the plan has no "encoders" entry, as before them."""
    import torch

    from dacviz_app.precompute.dac_encode import WeightsChoice
    from dacviz_app.precompute.config import PrecomputeConfig
    from dacviz_app.precompute.plan import make_plan

    def plan(specs):
        config = PrecomputeConfig(out=tmp_path / "out", model_type="16khz",
                                  weights=WeightsChoice(untrained=True, seed=0), encoders=specs)
        return make_plan([], config)

    assert "encoders" not in plan(())
    folder = tmp_path / "w2v"
    torch.manual_seed(0)
    tiny_wav2vec2(folder)
    first = plan((EncoderSpec("w2v", str(folder)),))
    torch.manual_seed(1)
    tiny_wav2vec2(folder)
    encoders._described.cache_clear()  # a new run would load it afresh
    second = plan((EncoderSpec("w2v", str(folder)),))
    assert first["encoders"]["w2v"]["sha256"] != second["encoders"]["w2v"]["sha256"]
    assert first["plan_id"] != second["plan_id"]
