"""Loading DAC and encoding batches of clips into pooled representations.

Model choice, in order: ``--untrained`` (the same architecture, seeded random init, only when
asked for); ``--weights PATH``; else (``--weights auto``, the default) the file DAC's own
download cache holds (``~/.cache/descript/dac/weights_<type>_8kbps_<tag>.pth``), downloaded
there by DAC's own downloader when it is not (``download_weights``).
"""
from __future__ import annotations

import hashlib
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from dacviz_app.cache.models import MODEL_CONFIGS, WEIGHT_TAGS  # noqa: F401 - re-exported for callers
from dacviz_app.cache.representations import depth_name


class WeightsNotFound(Exception):
    """No weights given and none in DAC's cache; the message names both ways to provide them."""


def dac_cache_weights_path(model_type: str) -> Path:
    """Where ``dac.utils.download(model_type)`` stores the 8 kbps weights."""
    return (Path.home() / ".cache" / "descript" / "dac"
            / f"weights_{model_type}_8kbps_{WEIGHT_TAGS[model_type]}.pth")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class WeightsChoice:
    """What the model's weights are: a file (path + sha256) or an untrained seeded init."""

    untrained: bool
    path: str | None = None
    sha256: str | None = None
    seed: int | None = None

    def describe(self) -> str:
        if self.untrained:
            return f"UNTRAINED (random init, seed {self.seed})"
        return f"{self.path} (sha256 {self.sha256[:12]}…)"

    def as_dict(self) -> dict:
        return {"untrained": self.untrained, "path": self.path, "sha256": self.sha256,
                "seed": self.seed}


WEIGHTS_MIRROR_ENV = "DACVIZ_DAC_WEIGHTS_URL"  # a folder URL serving DAC's release files by name
DOWNLOAD_TIMEOUT_S = 60.0


def release_url(model_type: str) -> str:
    """Where DAC's own downloader fetches the 8 kbps weights of ``model_type`` (its release
    table), or the same file name under ``$DACVIZ_DAC_WEIGHTS_URL`` (a team's mirror)."""
    import dac.utils

    tag = WEIGHT_TAGS[model_type]
    url = dac.utils.__MODEL_URLS__[(model_type, tag, "8kbps")]
    mirror = os.environ.get(WEIGHTS_MIRROR_ENV, "").strip()
    return mirror.rstrip("/") + "/" + url.rsplit("/", 1)[1] if mirror else url


def download_weights(model_type: str, say: Callable[[str], None] = print) -> Path:
    """Fetch the weights with DAC's own downloader (``dac.utils.download``, which puts them in
    ``dac_cache_weights_path``), from ``release_url``; check that the file is a DAC model of
    ``model_type``. Raises WeightsNotFound with one line (the URL, the file to put in place,
    --untrained) when it cannot."""
    import socket

    import dac.utils

    target = dac_cache_weights_path(model_type)
    url = release_url(model_type)
    key = (model_type, WEIGHT_TAGS[model_type], "8kbps")
    say(f"weights: none in DAC's cache; downloading {url} with DAC's downloader ...")
    previous_url, previous_timeout = dac.utils.__MODEL_URLS__[key], socket.getdefaulttimeout()
    dac.utils.__MODEL_URLS__[key] = url  # the mirror, when one is set; DAC's own URL otherwise
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # requests gives DAC's call no timeout of its own
    try:
        path = Path(dac.utils.download(model_type=model_type, model_bitrate="8kbps",
                                       tag=WEIGHT_TAGS[model_type]))
    except Exception as err:  # noqa: BLE001 - offline, refused, 404: one line, never a traceback
        target.unlink(missing_ok=True)  # never leave half a file that DAC would trust next time
        raise WeightsNotFound(
            f"cannot download the DAC {model_type} weights from {url} ({type(err).__name__}: "
            f"{str(err)[:160]}). Put that file at {target} (or pass --weights PATH), or pass "
            f"--untrained for random weights.") from None
    finally:
        dac.utils.__MODEL_URLS__[key] = previous_url
        socket.setdefaulttimeout(previous_timeout)
    problem = weights_problem(path, model_type)
    if problem:
        path.unlink(missing_ok=True)
        raise WeightsNotFound(f"the file downloaded from {url} is not DAC {model_type} weights "
                              f"({problem}); it was removed. Put the right file at {target}, or "
                              f"pass --weights PATH or --untrained.")
    say(f"weights: saved at {path} (sha256 {sha256_file(path)})")
    return path


def weights_problem(path: Path, model_type: str) -> str | None:
    """Why ``path`` is not a DAC checkpoint of ``model_type`` (None: it is): it must load with
    DAC's loader and have the model's sample rate."""
    import warnings

    warnings.filterwarnings("ignore", message=".*weight_norm.*", category=FutureWarning)
    import dac

    try:
        model = dac.utils.load_model(load_path=str(path))
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file
        return f"DAC cannot load it: {type(err).__name__}"
    rate = MODEL_CONFIGS[model_type]["sample_rate"]
    return None if int(model.sample_rate) == rate else f"its sample rate is {model.sample_rate}, not {rate}"


def resolve_weights(model_type: str, weights: str | None, untrained: bool,
                    seed: int = 0, say: Callable[[str], None] = print) -> WeightsChoice:
    """Decide which weights to use: a file (``weights``); ``--untrained``; or (``weights``
    None or "auto"): the file in DAC's download cache, else downloaded there
    (``download_weights``). Raises WeightsNotFound saying how to fix it."""
    if model_type not in MODEL_CONFIGS:
        raise ValueError(f"unknown model type {model_type!r}; one of {', '.join(MODEL_CONFIGS)}")
    if weights and weights != "auto":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsNotFound(f"--weights {weights}: no such file.")
        return WeightsChoice(untrained=False, path=str(path.resolve()), sha256=sha256_file(path))
    if untrained:
        return WeightsChoice(untrained=True, seed=seed)
    cached = dac_cache_weights_path(model_type)
    if not cached.is_file():
        cached = download_weights(model_type, say)
    return WeightsChoice(untrained=False, path=str(cached), sha256=sha256_file(cached))


def load_dac(model_type: str, choice: WeightsChoice, device: str):
    """Build the DAC model for ``choice`` on ``device``, in eval mode, its weight norms folded
    into plain weights (``fold_weight_norm``)."""
    import warnings

    warnings.filterwarnings("ignore", message=".*weight_norm.*", category=FutureWarning)
    import dac

    if choice.untrained:
        torch.manual_seed(choice.seed or 0)
        model = dac.DAC(**MODEL_CONFIGS[model_type])
    else:
        model = dac.utils.load_model(load_path=choice.path)
    return fold_weight_norm(model).to(device).eval()


def fold_weight_norm(model: torch.nn.Module) -> torch.nn.Module:
    """Replace every weight-normed layer's (g, v) by the weight g v / |v| they give, computed
    once: the very weight each forward pass would compute again (the same function), kept
    once instead of three times (g, v and the weight: ~300 MB less for the 16 kHz model)
    and not recomputed at every call. For inference only."""
    for module in model.modules():
        if hasattr(module, "weight_g") and hasattr(module, "weight_v"):
            torch.nn.utils.remove_weight_norm(module)
    return model


def driver_device(device: str, ray: str | None) -> str:
    """Where this process computes what it does itself: the run's ``device``, except under
    --ray (``ray``), where that is the workers' and this driver takes its own ('auto')."""
    return device if device == "cpu" or not ray else pick_device("auto")


def pick_device(requested: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'. 'cuda' without a GPU is an error."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device.")
    return requested


def dac_encode(model, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run DAC's encoder and quantizer once.

    Args:
        audio: (batch, 1, n_samples) float32 at ``model.sample_rate``; n_samples a multiple of
            ``model.hop_length``.
    Returns:
        z: (batch, latent_dim=1024, n_frames) the quantized latent (sum of the codebooks).
        codes: (batch, n_codebooks, n_frames) int64 codebook indices, level by level.
        latents: (batch, n_codebooks * codebook_dim, n_frames) each codebook's projected
            8-D latent before quantization, concatenated.
    ``DAC.encode`` returns ``(z, codes, latents, commitment_loss, codebook_loss)`` (a tuple,
    whatever its docstring says); the losses are not needed here.
    """
    z, codes, latents, _commitment, _codebook = model.encode(audio)
    return z, codes, latents


def quantized_at_depth(model, codes: torch.Tensor, depth: int) -> torch.Tensor:
    """The quantized latent of the first ``depth`` residual codebooks: (batch, 1024, n_frames).

    ``codes``: (batch, n_codebooks, n_frames). Depth n_codebooks is ``z`` itself. (Slicing one
    level alone, ``codes[:, i:i+1]``, would be decoded with the first codebook: always a prefix.)
    """
    z_q, _z_p, _codes = model.quantizer.from_codes(codes[:, :depth])
    return z_q


def code_counts(codes: torch.Tensor, n_valid: torch.Tensor, codebook_size: int) -> np.ndarray:
    """(n_codebooks, codebook_size) int64: how often each level used each entry, over the
    clips' own frames (padding frames left out). ``codes``: (batch, n_codebooks, n_frames)."""
    frames = torch.arange(codes.shape[-1], device=codes.device)
    valid = frames[None, :] < n_valid[:, None]  # (batch, n_frames)
    out = np.zeros((codes.shape[1], codebook_size), dtype=np.int64)
    for level in range(codes.shape[1]):
        used = codes[:, level, :][valid]
        out[level] = torch.bincount(used.reshape(-1).long(), minlength=codebook_size).cpu().numpy()
    return out


def frame_count(n_samples: int, hop_length: int) -> int:
    """Frames DAC produces for a clip of ``n_samples`` (after its right-pad to the hop)."""
    return math.ceil(n_samples / hop_length)


def masked_time_mean(x: torch.Tensor, n_valid: torch.Tensor) -> torch.Tensor:
    """Mean over time of the first ``n_valid[b]`` frames of each row.

    Args:
        x: (batch, channels, n_frames).
        n_valid: (batch,) int, 1 <= n_valid[b] <= n_frames.
    Returns:
        (batch, channels), padding frames ignored.
    """
    frames = torch.arange(x.shape[-1], device=x.device)
    mask = (frames[None, :] < n_valid[:, None]).to(x.dtype)  # (batch, n_frames)
    return (x * mask[:, None, :]).sum(-1) / n_valid[:, None].to(x.dtype)


@contextmanager
def padding_masked(encoder: torch.nn.Module, valid_samples: torch.Tensor, padded_samples: int):
    """Make a batched encoder pass see each clip as if it were encoded alone.

    Inside this context every Conv1d of ``encoder`` gets its input zeroed past each clip's
    own length at that layer's time resolution. Encoded alone, a clip's convolutions read
    zeros (their own padding) past its end; in a padded batch they would read activations
    computed from the padding. Zeroing restores the alone case exactly, so the batch gives
    the single-clip result up to float rounding.

    Args:
        valid_samples: (batch,) int, each clip's length rounded up to the hop length.
        padded_samples: the batch's padded length (a multiple of the hop length).
    """
    # tensors, not Python numbers: a compiled encoder then guards on no batch's own values (a
    # number captured here would recompile it for every new padded length)
    padded = torch.full((), padded_samples, dtype=torch.long, device=valid_samples.device)
    if hasattr(torch, "_dynamo"):
        torch._dynamo.maybe_mark_dynamic(valid_samples, 0)

    def zero_past_end(_module, inputs):
        (x,) = inputs  # (batch, channels, time); time = padded_samples / cumulative stride
        valid = valid_samples * x.shape[-1] // padded
        mask = torch.arange(x.shape[-1], device=x.device)[None, :] < valid[:, None]
        return (x * mask[:, None, :].to(x.dtype),)

    handles = [m.register_forward_pre_hook(zero_past_end)
               for m in encoder.modules() if isinstance(m, torch.nn.Conv1d)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@torch.inference_mode()
def encode_batch(model, clips: list[np.ndarray], device: str, depths: tuple[int, ...] = ()) -> dict:
    """Encode clips of unequal length in one batch and pool over each clip's own frames.

    Args:
        clips: list of (n_samples_i,) float32 mono at ``model.sample_rate``.
        depths: codebook counts q whose quantized latent is pooled too (``depth_name(q)``; the
            cache computes its depths from the stored codes instead: ``from_codes``).
    Returns:
        {"z": (batch, 1024), "codes_concat": (batch, n_codebooks*8), "codes_mean": (batch, 8),
         "z_q<q>": (batch, 1024) for q in depths} float32, "code_counts": (n_codebooks,
        codebook_size) int64 (``code_counts``), and "frame_codes": [(T_i, n_codebooks) int16]
        each clip's own frames' codebook indices. Clips are right-padded with zeros to the
        longest (rounded up to the hop). Inside the encoder each clip's padding is zeroed at
        every convolution (``padding_masked``), and only each clip's own frames enter the mean,
        so the result equals a one-by-one encode up to float rounding (the tests check 1e-4
        relative).
    """
    hop = int(model.hop_length)
    frames = [frame_count(len(c), hop) for c in clips]
    padded_len = max(frames) * hop
    batch = np.zeros((len(clips), 1, padded_len), dtype=np.float32)
    for row, clip in enumerate(clips):
        batch[row, 0, :len(clip)] = clip
    n_valid = torch.tensor(frames, device=device)
    audio = torch.from_numpy(batch)
    if device == "cuda":  # page-locked, so the host-to-device copy is one DMA, queued without a wait
        audio = audio.pin_memory().to(device, non_blocking=True)
    else:
        audio = audio.to(device)
    compiled = hasattr(model.encoder, "_orig_mod")  # torch.compile'd: one graph, always masked
    if compiled:  # batch size and length vary from batch to batch: never specialise on them
        torch._dynamo.maybe_mark_dynamic(audio, 0)
        torch._dynamo.maybe_mark_dynamic(audio, 2)
    if min(frames) == max(frames) and not compiled:  # no padding beyond DAC's own: nothing to mask
        z, codes, latents = dac_encode(model, audio)
    else:
        with padding_masked(model.encoder, n_valid * hop, padded_len):
            z, codes, latents = dac_encode(model, audio)
    z_pooled = masked_time_mean(z.float(), n_valid)
    latents_pooled = masked_time_mean(latents.float(), n_valid)
    n_codebooks = latents_pooled.shape[1] // int(model.codebook_dim)
    codes_mean = latents_pooled.reshape(len(clips), n_codebooks, -1).mean(1)
    out = {"z": z_pooled.cpu().numpy(), "codes_concat": latents_pooled.cpu().numpy(),
           "codes_mean": codes_mean.cpu().numpy()}
    for depth in depths:
        out[depth_name(depth)] = masked_time_mean(quantized_at_depth(model, codes, depth).float(),
                                                  n_valid).cpu().numpy()
    out["code_counts"] = code_counts(codes, n_valid, int(model.codebook_size))
    on_host = codes.to(torch.int16).cpu().numpy()  # indices < codebook_size (1024) fit int16
    out["frame_codes"] = [np.ascontiguousarray(on_host[row, :, :t].T) for row, t in enumerate(frames)]
    return out
