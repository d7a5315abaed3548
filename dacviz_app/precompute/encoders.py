"""Encoders: what turns a clip into a pooled vector, one representation each.

An encoder has a name (its representation's name in the cache), a sample rate, an output
dimension, whether its weights are trained, where they come from, and ``encode``: a batch of
clips -> ``(n_clips, dim) float32`` pooled vectors. Precompute runs DAC (``core.encode``: its
representations z, codes_concat, codes_mean and the depths z_q<q>, plus code counts and the
decoded audio, which no other encoder has) and the MFCC baseline (in the loader workers) for
every cache, and the encoders named by ``--encoders`` beside them; the cache, the app and the
metrics then treat every representation alike (its own projections, neighbours and metrics).

Built in:

- ``mfcc`` (80,): the no-weights baseline (``representations.mfcc_stats``).
- ``resemblyzer`` (256,): Resemblyzer 0.1.4's GE2E speaker encoder (3-layer LSTM, 40 mel
  channels, trained on LibriSpeech, VoxCeleb 1 and 2), its ``pretrained.pt`` read from the
  installed wheel. The package itself is not imported: its ``__init__`` needs librosa and
  webrtcvad for preprocessing. Its network and its ``embed_utterance`` are rebuilt here,
  with the same mel filterbank through torchaudio (Slaney scale and norm, as librosa's default):
  volume normalised up to -30 dBFS, 1.6 s partial windows at 1.3 per second, each embedded,
  averaged and L2-normalised. Resemblyzer's voice-activity trimming of long silences (webrtcvad)
  is left out: the clips dacviz shows are short utterances.
- any Hugging Face ``transformers`` audio encoder from a local folder (``--encoder-path
  NAME=PATH``): Wav2Vec2, HuBERT, WavLM, Whisper's encoder. Mean-pooled last hidden state, or a
  chosen layer (``--layer``). Never downloads: a missing folder is a clear error.

Adding an encoder: subclass ``Encoder`` (name, sample_rate, dim, trained, title, description,
``weights_record`` and ``encode``), and give ``make_encoder`` a way to build it. Nothing else
changes: precompute stores its vectors as a representation and every later step follows.
"""
from __future__ import annotations

import hashlib
import importlib.util
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
CORE = ("dac", "mfcc")  # in every cache
BUILT_IN = ("resemblyzer",)
# names an encoder beside DAC may not take: DAC's representations (z_q<q> any q included) and
# the other arrays of an encode chunk (pipeline.encode_chunk)
RESERVED = {"z", "codes_concat", "codes_mean", "mfcc", "plan_index", "code_counts", "duration_s",
            "original_rate", "channels", "skipped_index", "skipped_reason"}
RESERVED_PATTERN = re.compile(r"^z_q\d+$")


def reserved(name: str) -> bool:
    """Whether ``name`` is DAC's, MFCC's or an encode chunk's own."""
    return name in CORE or name in BUILT_IN or name in RESERVED or bool(RESERVED_PATTERN.match(name))
PARTIAL_BATCH = 256  # Resemblyzer windows per LSTM call


class EncoderError(Exception):
    """An encoder that cannot be used as asked; the message says why and what to do."""


@dataclass(frozen=True)
class EncoderSpec:
    """What the command line asked for: a built-in encoder's name, or a name with the local
    folder of a Hugging Face model (and the hidden layer to pool; None: the last)."""

    name: str
    path: str | None = None
    layer: int | None = None

    def as_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "layer": self.layer}


def sha256_file(path: Path) -> str:
    """The sha256 of one weights file, as the manifest records DAC's (``encode.sha256_file``)."""
    from dacviz_app.precompute.dac_encode import sha256_file as of_file

    return of_file(Path(path))


def sha256_of(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class Encoder:
    """One representation's encoder. Subclasses set the attributes and implement ``encode``."""

    name: str
    sample_rate: int
    dim: int
    trained: bool
    title: str
    description: str

    def weights_record(self) -> dict:
        """Where the weights come from, for the manifest and the plan: {"source", "sha256"}."""
        raise NotImplementedError

    def encode(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Clips, each ``(n_samples,) float32`` mono at ``self.sample_rate`` -> ``(n_clips,
        dim) float32``."""
        raise NotImplementedError

    def describe(self) -> dict:
        """The manifest's entry for this encoder's representation."""
        return {"dim": int(self.dim), "title": self.title, "description": self.description,
                "encoder": self.name, "trained": bool(self.trained),
                "sample_rate": int(self.sample_rate), "weights": self.weights_record()}


class MfccEncoder(Encoder):
    """The MFCC baseline as an encoder (precompute computes it in its loader workers)."""

    name, trained, title = "mfcc", False, "mfcc (80-D baseline)"
    description = "mean and std over time of 40 MFCCs (no codec, no learned weights)"

    def __init__(self):
        from dacviz_app.cache.representations import MFCC_RATE, N_MFCC

        self.sample_rate, self.dim = MFCC_RATE, 2 * N_MFCC

    def weights_record(self) -> dict:
        return {"source": "none (a fixed transform)", "sha256": None}

    def encode(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        from dacviz_app.precompute.mfcc import mfcc_stats

        return np.stack([mfcc_stats(c, self.sample_rate) for c in clips]).astype(np.float32)


# ----------------------------------------------------------------------------- Resemblyzer
RESEMBLYZER_VERSION = "0.1.4"
MEL_CHANNELS, WINDOW_MS, STEP_MS = 40, 25, 10
PARTIAL_FRAMES = 160  # 1.6 s
PARTIAL_RATE, MIN_COVERAGE = 1.3, 0.75
TARGET_DBFS = -30.0


def resemblyzer_weights() -> Path | None:
    """The ``pretrained.pt`` inside the installed Resemblyzer wheel (found without importing
    the package), or None."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    return path if path.is_file() else None


def partial_slices(n_samples: int, sample_rate: int) -> list[tuple[int, int]]:
    """Resemblyzer's ``compute_partial_slices``: the mel-frame ranges of the 1.6 s windows that
    cover a clip of ``n_samples`` (at least one; the last kept if it covers 75 %)."""
    per_frame = sample_rate * STEP_MS // 1000
    n_frames = int(math.ceil((n_samples + 1) / per_frame))
    step = int(round((sample_rate / PARTIAL_RATE) / per_frame))
    starts = range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step)
    slices = [(s, s + PARTIAL_FRAMES) for s in starts]
    coverage = (n_samples - slices[-1][0] * per_frame) / (PARTIAL_FRAMES * per_frame)
    if coverage < MIN_COVERAGE and len(slices) > 1:
        slices = slices[:-1]
    return slices


def normalise_volume(audio: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Resemblyzer's ``normalize_volume(increase_only=True)``; a silent clip is left as it is."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    if rms <= 0.0:
        return audio
    change = target_dbfs - 20 * math.log10(rms)
    return audio if change < 0 else (audio * 10 ** (change / 20)).astype(np.float32)


class SpeakerEncoder(Encoder):
    """Resemblyzer's trained GE2E speaker encoder -> (256,) L2-normalised, non-negative."""

    name, trained, dim, sample_rate = "resemblyzer", True, 256, 16000
    title = "resemblyzer (256-D speaker encoder, trained)"
    description = ("Resemblyzer's GE2E speaker encoder (LSTM on 40 mel channels, trained on "
                   "LibriSpeech and VoxCeleb), partial windows averaged")

    def __init__(self, device: str = "cpu", weights: Path | None = None):
        import torch

        self.path = weights or resemblyzer_weights()
        if self.path is None:
            raise EncoderError(
                f"resemblyzer: its weights are not installed. `pip install --no-deps "
                f"resemblyzer=={RESEMBLYZER_VERSION}` puts them in place (the wheel holds "
                f"pretrained.pt, 17 MB; dacviz does not need its other dependencies).")
        self.device = device
        self.lstm = torch.nn.LSTM(MEL_CHANNELS, 256, 3, batch_first=True)
        self.linear = torch.nn.Linear(256, 256)
        state = torch.load(self.path, map_location="cpu", weights_only=True)["model_state"]
        self.lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
        self.linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
        for module in (self.lstm, self.linear):
            module.to(device).eval()
        self.mel = torch_mel(self.sample_rate).to(device)

    def weights_record(self) -> dict:
        return {"source": f"resemblyzer {RESEMBLYZER_VERSION} pretrained.pt", "sha256": sha256_file(self.path)}

    def encode(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        windows, owner = [], []
        for i, clip in enumerate(clips):
            audio = normalise_volume(np.asarray(clip, np.float32))
            slices = partial_slices(len(audio), self.sample_rate)
            per_frame = self.sample_rate * STEP_MS // 1000
            needed = slices[-1][1] * per_frame
            if needed >= len(audio):
                audio = np.pad(audio, (0, needed - len(audio)))
            with torch.inference_mode():
                mel = self.mel(torch.from_numpy(np.ascontiguousarray(audio)).to(self.device)).T  # (frames, 40)
            windows += [mel[a:b] for a, b in slices]
            owner += [i] * len(slices)
        partial = []
        with torch.inference_mode():
            for start in range(0, len(windows), PARTIAL_BATCH):
                batch = torch.stack(windows[start:start + PARTIAL_BATCH])
                _, (hidden, _) = self.lstm(batch)
                raw = torch.relu(self.linear(hidden[-1]))
                partial.append(raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12))
        partial_np = torch.cat(partial).cpu().numpy().astype(np.float64)
        owner_np = np.asarray(owner)
        out = np.zeros((len(clips), self.dim), np.float64)
        np.add.at(out, owner_np, partial_np)
        out /= np.bincount(owner_np, minlength=len(clips))[:, None]
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)


def torch_mel(sample_rate: int):
    """librosa.feature.melspectrogram's defaults at Resemblyzer's settings, in torchaudio: power
    2 (not log), 25 ms Hann window, 10 ms hop, 40 Slaney mel bands (Slaney norm), centred frames
    padded with zeros."""
    import torchaudio

    n_fft = sample_rate * WINDOW_MS // 1000
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=n_fft, win_length=n_fft, hop_length=sample_rate * STEP_MS // 1000,
        n_mels=MEL_CHANNELS, power=2.0, norm="slaney", mel_scale="slaney", center=True,
        pad_mode="constant")


# ----------------------------------------------------------------------------- Hugging Face
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth")  # hashed with the folder's *.json


class HuggingFaceEncoder(Encoder):
    """A ``transformers`` audio model from a local folder: the mean over frames of its last
    hidden state (or of hidden layer ``layer``; 0 is the embeddings' output). Whisper-style
    encoder-decoders use their encoder, pooled over the clip's own frames (not the padding to
    30 s). Clips are encoded one at a time (no padding enters a mean)."""

    trained = True

    def __init__(self, name: str, path: str, layer: int | None = None, device: str = "cpu"):
        try:
            from transformers import AutoFeatureExtractor, AutoModel
        except ImportError:
            raise EncoderError(f"--encoder-path {name}=…: needs the transformers package "
                               f"(`pip install transformers`).") from None
        folder = Path(path).expanduser()
        if not folder.is_dir() or not (folder / "config.json").is_file():
            raise EncoderError(
                f"--encoder-path {name}={path}: no Hugging Face model there (a folder with "
                f"config.json and the weights, e.g. from `save_pretrained`). dacviz never "
                f"downloads: bring your own weights.")
        self.name, self.folder, self.layer, self.device = name, folder, layer, device
        try:
            self.extractor = AutoFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
            model = AutoModel.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as err:
            raise EncoderError(f"--encoder-path {name}={path}: cannot load it: {err}") from None
        # transformers loads a checkpoint in the precision it was saved in (float16 for some):
        # dacviz runs every encoder in float32, its inputs included
        model = model.float()
        self.whisper = getattr(model.config, "model_type", "") == "whisper"
        if getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()
        self.model = model.to(device).eval()
        n_layers = int(getattr(model.config, "num_hidden_layers", 0) or getattr(model.config, "encoder_layers", 0) or 0)
        if layer is not None and n_layers and not 0 <= layer <= n_layers:
            raise EncoderError(f"--layer {layer}: {name} has hidden layers 0..{n_layers}.")
        self.sample_rate = int(self.extractor.sampling_rate)
        self.dim = int(getattr(model.config, "hidden_size", 0) or getattr(model.config, "d_model"))
        try:  # one short clip now: a model that cannot encode fails here, before any work
            self.encode([np.zeros(self.sample_rate // 2, np.float32)])
        except Exception as err:  # noqa: BLE001 - any failure of a user's model is reported as one line
            raise EncoderError(f"--encoder-path {name}={path}: it loads but cannot encode a clip: "
                               f"{type(err).__name__}: {err}") from None
        kind = model.config.model_type
        where = "last hidden state" if layer is None else f"hidden layer {layer}"
        self.title = f"{name} ({self.dim}-D {kind}, {where}, trained)"
        self.description = f"{kind} from {folder.name}: mean over frames of its {where}"

    def weights_record(self) -> dict:
        files = [p for pattern in (*WEIGHT_FILES, "*.json") for p in self.folder.glob(pattern)]
        return {"source": f"local folder {self.folder.name} ({self.model.config.model_type})"
                          + ("" if self.layer is None else f", layer {self.layer}"),
                "sha256": sha256_of(files)}

    def encode(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        out = np.zeros((len(clips), self.dim), np.float32)
        with torch.inference_mode():
            for i, clip in enumerate(clips):
                inputs = self.extractor(np.asarray(clip, np.float32), sampling_rate=self.sample_rate,
                                        return_tensors="pt")
                inputs = {k: v.to(self.device) for k, v in inputs.items()
                          if k in ("input_values", "input_features", "attention_mask")}
                result = self.model(**inputs, output_hidden_states=self.layer is not None)
                if self.layer is not None and self.layer >= len(result.hidden_states):
                    raise EncoderError(f"--layer {self.layer}: {self.name} has hidden layers "
                                       f"0..{len(result.hidden_states) - 1}.")
                hidden = (result.last_hidden_state if self.layer is None
                          else result.hidden_states[self.layer])[0]  # (frames, dim)
                if self.whisper:  # the clip's own frames: 2 feature frames per encoder frame
                    hop = int(getattr(self.extractor, "hop_length", 160))
                    hidden = hidden[:max(1, math.ceil(len(clip) / hop / 2))]
                out[i] = hidden.float().mean(dim=0).cpu().numpy()
        return out


# ----------------------------------------------------------------------------- choosing
def available_built_in() -> list[str]:
    """The built-in encoders beside DAC and MFCC whose weights are here, offline."""
    return [name for name, present in (("resemblyzer", resemblyzer_weights() is not None),) if present]


def parse_specs(names: Sequence[str] | None, paths: Sequence[str] = (), layer: int | None = None
                ) -> tuple[EncoderSpec, ...]:
    """``--encoders`` and ``--encoder-path NAME=PATH`` -> the encoders beside DAC and MFCC.

    ``names`` None: every built-in one whose weights are installed, and every ``--encoder-path``
    one. 'dac' and 'mfcc' may be named (they are always there); a name given a path is a Hugging
    Face model. Raises EncoderError for an unknown name, a malformed or repeated path."""
    folders: dict[str, str] = {}
    for item in paths:
        name, sep, path = str(item).partition("=")
        if not sep or not path or not NAME_PATTERN.match(name):
            raise EncoderError(f"--encoder-path {item!r}: write NAME=PATH, NAME in lower case "
                               f"letters, digits and _ (e.g. wav2vec2=models/wav2vec2-base).")
        if reserved(name) or name in folders:
            raise EncoderError(f"--encoder-path {item!r}: the name {name!r} is taken (DAC's, "
                               f"MFCC's or a built-in encoder's); choose another.")
        folders[name] = path
    wanted = list(available_built_in()) + list(folders) if names is None else list(dict.fromkeys(names))
    specs = []
    for name in wanted:
        if name in CORE:
            continue
        if name in folders:
            specs.append(EncoderSpec(name, folders[name], layer))
        elif name in BUILT_IN:
            specs.append(EncoderSpec(name))
        else:
            raise EncoderError(
                f"--encoders {name}: unknown. Built in: {', '.join(CORE + BUILT_IN)}; a Hugging "
                f"Face model needs --encoder-path {name}=PATH.")
    missing = [n for n in folders if n not in wanted]
    if missing:
        raise EncoderError(f"--encoder-path {missing[0]}=…: add {missing[0]} to --encoders too.")
    return tuple(specs)


def make_encoder(spec: EncoderSpec, device: str = "cpu") -> Encoder:
    """The encoder ``spec`` names, loaded on ``device``."""
    if spec.path is not None:
        return HuggingFaceEncoder(spec.name, spec.path, spec.layer, device)
    if spec.name == "resemblyzer":
        return SpeakerEncoder(device)
    if spec.name == "mfcc":
        return MfccEncoder()
    raise EncoderError(f"unknown encoder {spec.name!r}")


@lru_cache(maxsize=8)
def _described(spec: EncoderSpec) -> dict:
    return make_encoder(spec, "cpu").describe()


def describe_all(specs: Sequence[EncoderSpec]) -> dict[str, dict]:
    """{name: manifest entry} of the encoders ``specs`` name (each loaded once, on the CPU, to
    read its dimension and hash its weights)."""
    return {spec.name: _described(spec) for spec in specs}
