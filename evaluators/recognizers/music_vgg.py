"""music-vgg-v1: a second music emotion reader learned from real recordings (audio in).

**What.** The VGG baselines shipped beside musicnn (Pons & Serra 2019, "musicnn: pre-trained
convolutional neural networks for music audio tagging", ISMIR late-breaking demo): a
computer-vision style stack of small 3x3 convolutions over the log-mel spectrogram (the VGG
family of Simonyan & Zisserman 2015, as used for music tagging by Choi, Fazekas & Sandler 2016),
the baseline that Pons et al. 2018 ("End-to-end learning for music audio tagging at scale")
compare their musically motivated front end against. Two taggers: ``MSD_vgg`` (the Million Song
Dataset's top-50 last.fm tags) and ``MTT_vgg`` (MagnaTagATune's top-50 tags), the same tag
vocabularies as music-musicnn-v1's networks, so the same rule turns them into valence and
arousal. It shares no learned layer with musicnn: a second, independent trained reading of the
same audio.

**Network** (musicnn/models.py ``vgg``, 128 maps): batch norm of the input (one channel); five
blocks of 3x3 conv ('same' padding) + ReLU, batch norm, max pooling: (4, 1) with stride (2, 2),
then (2, 2) three times, then (4, 4); a (187, 96) patch becomes (2, 1, 128), flattened in
TensorFlow's (time, frequency, map) order, then one dense layer to the 50 tags (sigmoid). Dropout
is off at inference. The network only takes 3 s patches (187 frames).

**Source and licence.** The TF1 checkpoints ship in the ``musicnn`` PyPI package 0.1.0 (ISC
licence), installed ``--no-deps`` (its TensorFlow and librosa are never imported). They are read
with ``music_musicnn.read_tf_checkpoint`` (numpy only); ``load_vgg`` copies them into the torch
``Vgg`` with every tensor used exactly once and every shape checked. The front end is
music-musicnn-v1's (``log_mel``, ``patches``: 16 kHz mono, 96 Slaney mel bands, float16 mel power,
``log10(10000 x + 1)``, non-overlapping 3 s patches, a shorter tail dropped); clips shorter than
3 s are refused.

**Mapping rule.** Exactly music-musicnn-v1's fixed tag -> valence/arousal rule
(``music_musicnn.tags_to_va`` with its pole weights and ``EPSILON``, imported, not copied): tag
probabilities averaged over patches, valence = balance of happy/party against sad (MSD), arousal
= balance of fast/loud (MTT) and high-energy genres (MSD) against slow/quiet/soft (MTT) and calm
moods (MSD); categories from ``base.va_probabilities``. The reading is a ``MusicnnReading`` with
``recognizer="music-vgg-v1"`` and the tags under ``"msd/<tag>"`` and ``"mtt/<tag>"``.

Example:
    >>> import numpy as np
    >>> from evaluators.recognizers.music_vgg import MusicVggRecognizer
    >>> t = np.arange(4 * 16000) / 16000
    >>> wav = 0.3 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    >>> reading = MusicVggRecognizer.from_pretrained()(wav, sample_rate=16000)
    >>> round(sum(reading.probabilities.values()), 6), len(reading.tags), reading.recognizer
    (1.0, 100, 'music-vgg-v1')
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evaluators.recognizers.music_musicnn import (
    INSTALL_HINT,
    MSD_TAGS,
    MTT_TAGS,
    N_MELS,
    PATCH_FRAMES,
    MusicnnRecognizer,
    musicnn_checkpoint,
    read_tf_checkpoint,
)

MODELS = {"msd": ("MSD_vgg", MSD_TAGS), "mtt": ("MTT_vgg", MTT_TAGS)}

#: (kernel, stride) of each block's max pooling (TensorFlow 'valid' pooling).
POOLS: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (
    ((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))


def _pooled(size: int, axis: int) -> int:
    for kernel, stride in POOLS:
        size = (size - kernel[axis]) // stride[axis] + 1
    return size


class Vgg(nn.Module):
    """musicnn's VGG baseline: (B, 187, 96) log-mel patches -> (B, n_tags) logits (sigmoid
    outside). See the module docstring for the layers."""

    def __init__(self, n_tags: int = 50, maps: int = 128, frames: int = PATCH_FRAMES,
                 n_mels: int = N_MELS):
        super().__init__()
        self.frames, self.n_mels = frames, n_mels
        self.input_bn = nn.BatchNorm2d(1, eps=1e-3)  # tf.layers.batch_normalization's epsilon
        self.convs = nn.ModuleList(
            nn.Conv2d(1 if i == 0 else maps, maps, 3, padding=1) for i in range(len(POOLS)))
        self.bns = nn.ModuleList(nn.BatchNorm2d(maps, eps=1e-3) for _ in POOLS)
        self.head = nn.Linear(_pooled(frames, 0) * _pooled(n_mels, 1) * maps, n_tags)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.ndim != 3 or tuple(mel.shape[1:]) != (self.frames, self.n_mels):
            raise ValueError(f"Vgg takes (batch, {self.frames}, {self.n_mels}) log-mel patches "
                             f"(3 s), got {tuple(mel.shape)}")
        x = self.input_bn(mel[:, None])  # (B, 1, T, F)
        for conv, bn, (kernel, stride) in zip(self.convs, self.bns, POOLS):
            # batch norm after the ReLU and before the pooling, as the original orders them
            x = F.max_pool2d(bn(F.relu(conv(x))), kernel, stride)
        return self.head(x.permute(0, 2, 3, 1).flatten(1))  # TF flattens (time, freq, map)


def _checkpoint_names(n_blocks: int = len(POOLS)) -> dict[str, tuple[str, str]]:
    """torch module -> (checkpoint layer, kind): convs are named 1CNN..5CNN, the batch norms
    numbered in creation order (the input's first), the dense layer 'dense'."""
    names = {"input_bn": ("batch_normalization", "bn"), "head": ("dense", "dense")}
    for i in range(n_blocks):
        names[f"convs.{i}"] = (f"{i + 1}CNN", "conv")
        names[f"bns.{i}"] = (f"batch_normalization_{i + 1}", "bn")
    return names


def vgg_from_tensors(tensors: dict[str, np.ndarray], where: str = "checkpoint") -> Vgg:
    """A ``Vgg`` in eval mode holding ``tensors`` (checkpoint name -> array). Raises
    ``ValueError`` if a tensor is missing, used twice, of the wrong shape, or left unused."""
    if "dense/bias" not in tensors or "1CNN/bias" not in tensors:
        raise ValueError(f"{where}: not a musicnn VGG checkpoint (no 1CNN/bias or dense/bias)")
    model = Vgg(n_tags=tensors["dense/bias"].shape[0], maps=tensors["1CNN/bias"].shape[0]).eval()
    modules = dict(model.named_modules())
    used: set[str] = set()

    def put(param: torch.Tensor, name: str, transform=None) -> None:
        if name not in tensors:
            raise ValueError(f"{where}: tensor {name} is missing")
        if name in used:
            raise ValueError(f"{where}: tensor {name} would be used twice")
        used.add(name)
        array = tensors[name] if transform is None else transform(tensors[name])
        if tuple(param.shape) != array.shape:
            raise ValueError(f"{where}: {name} has shape {tensors[name].shape}, which gives "
                             f"{array.shape} where {tuple(param.shape)} was expected")
        param.data.copy_(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)))

    with torch.no_grad():
        for module, (layer, kind) in _checkpoint_names().items():
            m = modules[module]
            if kind == "conv":  # (kh, kw, in, out) -> (out, in, kh, kw)
                put(m.weight, layer + "/kernel", lambda k: k.transpose(3, 2, 0, 1))
                put(m.bias, layer + "/bias")
            elif kind == "dense":  # (in, out) -> (out, in)
                put(m.weight, layer + "/kernel", lambda k: k.T)
                put(m.bias, layer + "/bias")
            else:
                put(m.weight, layer + "/gamma")
                put(m.bias, layer + "/beta")
                put(m.running_mean, layer + "/moving_mean")
                put(m.running_var, layer + "/moving_variance")
    if set(tensors) - used:
        raise ValueError(f"{where}: tensors not used by Vgg: {sorted(set(tensors) - used)}")
    return model


def load_vgg(prefix: str | Path) -> Vgg:
    """A ``Vgg`` in eval mode with the weights of a musicnn VGG checkpoint (``MSD_vgg/`` or
    ``MTT_vgg/``; every tensor used once, every shape checked)."""
    return vgg_from_tensors(read_tf_checkpoint(prefix), where=str(prefix))


def vgg_checkpoint(model: str = "MSD_vgg") -> Path:
    """The checkpoint prefix folder of ``model`` in the installed musicnn package."""
    try:
        return musicnn_checkpoint(model)
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(f"music-vgg-v1 needs the checkpoints shipped in the musicnn "
                                  f"package: {INSTALL_HINT}", name="musicnn") from e


_NETWORKS: dict[str, Vgg] = {}


class MusicVggRecognizer(MusicnnRecognizer):
    """music-vgg-v1: MSD_vgg and MTT_vgg tags -> valence, arousal, categories, by
    music-musicnn-v1's fixed rule (the same front end, tags and reading; only the networks
    differ). The reading is a ``MusicnnReading`` with ``recognizer="music-vgg-v1"``."""

    name = "music-vgg-v1"
    source = ("musicnn package VGG baselines MSD_vgg + MTT_vgg (Pons & Serra 2019; Pons et al. "
              "2018), TF1 checkpoints shipped in the musicnn PyPI package 0.1.0, read into torch "
              "by this project")

    @classmethod
    def from_pretrained(cls) -> MusicVggRecognizer:
        """Both networks from the installed musicnn package (loaded once per process)."""
        for model, _ in MODELS.values():
            if model not in _NETWORKS:
                _NETWORKS[model] = load_vgg(str(vgg_checkpoint(model)) + "/")
        return cls({key: _NETWORKS[model] for key, (model, _) in MODELS.items()})
