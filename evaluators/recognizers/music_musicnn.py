"""music-musicnn-v1: a music emotion reader learned from real recordings (audio in).

**What.** musicnn (Pons & Serra 2019, "musicnn: pre-trained convolutional neural networks for
music audio tagging", ISMIR late-breaking demo; the architecture of Pons et al. 2018, "End-to-end
learning for music audio tagging at scale") is a tagger trained on real recordings: the Million
Song Dataset's top-50 last.fm tags (``MSD_musicnn``: happy, sad, party, Mellow, chill, ...) and
MagnaTagATune's top-50 tags (``MTT_musicnn``: fast, slow, loud, quiet, soft, ...). This reader
runs both and turns their tag probabilities into valence, arousal and the nine categories.
Where music-audio-v1 weighs hand-measured cues, this one reads what listeners tagged.

**Source and licence.** The TF1 checkpoints ship in the ``musicnn`` PyPI package 0.1.0 (ISC
licence), installed ``--no-deps`` (its TensorFlow and librosa dependencies are never imported).
``read_tf_checkpoint`` reads the tensors with numpy from the checkpoint's ``.index`` (a sorted
string table of ``BundleEntryProto`` records) and ``.data-00000-of-00001`` files; ``Musicnn``
rebuilds the network in torch and ``load_musicnn`` copies the weights in, every tensor used once
and every shape checked. The front end is in torch: 16 kHz mono, |STFT|^2 (n_fft 512, hop 256,
periodic Hann, centred frames with zero padding as librosa >= 0.10 pads), a 96-band Slaney mel
filterbank (torchaudio's ``norm="slaney", mel_scale="slaney"``, the same filters as librosa's
default), the mel power rounded to float16 as the original extractor stores it, then
``log10(10000 x + 1)``; the clip is cut into non-overlapping 3 s patches (187 frames; a shorter
tail is dropped), as the original extractor does. Clips shorter than 3 s are refused.

**Mapping rule** (fixed from the meaning of the tags, not fitted to any output). Each tag's
sigmoid probability is averaged over the clip's patches. For each pole of each axis a score is
the weighted mean of its tags' probabilities::

    valence +  : happy (MSD) 1, party (MSD) 0.5
    valence -  : sad (MSD) 1
    arousal +  : fast 1, loud 1 (MTT); party 0.5, hard rock 0.5, heavy metal 0.5, metal 0.5,
                 punk 0.5 (MSD)
    arousal -  : slow 1, quiet 1, soft 1 (MTT); Mellow 0.5, chill 0.5, chillout 0.5,
                 ambient 0.5, easy listening 0.5 (MSD)

and each axis is the balance of its poles, ``(s+ - s-) / (s+ + s- + EPSILON)`` in [-1, 1]: a clip
on which only one pole's tags fire reads near +-1, a balanced or untagged one near 0 (the
``EPSILON`` of 0.02 keeps clips on which no pole tag reaches a few percent near 0). Valence
comes from the only valence-named tags (happy/sad; party adds a positive, lively sense); the
tempo and loudness descriptors (MTT: fast/slow, loud/quiet/soft) carry arousal with full weight,
since pace and loudness are its strongest cues (Gabrielsson & Lindstrom 2010), and the genre
and mood tags of high or low energy (MSD) with half weight. "beautiful" is left out: listeners
give it to sad and tender songs as often as to happy ones, so it names no valence pole. The
categories then come from ``base.va_probabilities``. The reading keeps every tag's probability
(``tags``, keys ``"msd/<tag>"`` and ``"mtt/<tag>"``) and the four pole scores.

Example:
    >>> import numpy as np
    >>> from evaluators.recognizers.music_musicnn import MusicnnRecognizer
    >>> t = np.arange(4 * 16000) / 16000
    >>> wav = 0.3 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    >>> reading = MusicnnRecognizer.from_pretrained()(wav, sample_rate=16000)
    >>> round(sum(reading.probabilities.values()), 6), len(reading.tags)
    (1.0, 100)
"""

from __future__ import annotations

import importlib.util
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from conditioning.audio import load_audio
from conditioning.spec import EmotionSpec
from evaluators.recognizers.base import va_probabilities

INSTALL_HINT = "pip install --no-deps musicnn==0.1.0"

# -- signal front end (the extractor's settings) -------------------------------------------------
SR = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # 3 s: the frame index of 3 s with librosa's centred frames, plus one
MIN_SECONDS = 3.0  # 187 centred frames need (187 - 1) * 256 samples = 2.98 s; asked as 3 s

#: Tag order of the networks' outputs (musicnn/configuration.py, 0.1.0).
MSD_TAGS: tuple[str, ...] = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
    "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill",
    "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental",
    "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy",
    "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop",
    "sad", "House", "happy")
MTT_TAGS: tuple[str, ...] = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
    "weird", "country", "metal", "female voice", "choral")
MODELS = {"msd": ("MSD_musicnn", MSD_TAGS), "mtt": ("MTT_musicnn", MTT_TAGS)}

#: Pole tags and weights (see the module docstring); keys "<model>/<tag>".
VALENCE_POS = {"msd/happy": 1.0, "msd/party": 0.5}
VALENCE_NEG = {"msd/sad": 1.0}
AROUSAL_POS = {"mtt/fast": 1.0, "mtt/loud": 1.0, "msd/party": 0.5, "msd/hard rock": 0.5,
               "msd/heavy metal": 0.5, "msd/metal": 0.5, "msd/punk": 0.5}
AROUSAL_NEG = {"mtt/slow": 1.0, "mtt/quiet": 1.0, "mtt/soft": 1.0, "msd/Mellow": 0.5,
               "msd/chill": 0.5, "msd/chillout": 0.5, "msd/ambient": 0.5,
               "msd/easy listening": 0.5}
EPSILON = 0.02


# -- TF1 checkpoint reading, numpy only ----------------------------------------------------------
_TABLE_MAGIC = 0xDB4775248B80FB57
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 19: np.float16}


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _block(buf: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """The (key, value) entries of one table block (prefix-compressed keys, restart array at
    the end, not compressed: TensorFlow writes bundle indexes without compression)."""
    data = buf[offset : offset + size]
    if buf[offset + size] != 0:
        raise ValueError("compressed checkpoint index blocks are not supported")
    n_restarts = struct.unpack("<I", data[-4:])[0]
    end, i, key, out = len(data) - 4 - 4 * n_restarts, 0, b"", []
    while i < end:
        shared, i = _varint(data, i)
        unshared, i = _varint(data, i)
        length, i = _varint(data, i)
        key = key[:shared] + data[i : i + unshared]
        i += unshared
        out.append((key, data[i : i + length]))
        i += length
    return out


def _proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs of a protobuf message: varints as int, the rest as bytes."""
    i, out = 0, []
    while i < len(buf):
        tag, i = _varint(buf, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            length, i = _varint(buf, i)
            value, i = buf[i : i + length], i + length
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, i = buf[i : i + width], i + width
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
        out.append((number, value))
    return out


def read_tf_checkpoint(prefix: str | Path, skip_optimizer: bool = True) -> dict[str, np.ndarray]:
    """All tensors of a TF1 (V2 format) checkpoint, name -> array, read with numpy.

    ``prefix`` is the path the files share before ``.index`` / ``.data-00000-of-00001`` (for
    musicnn's folders the prefix ends in "/": the files are called ``.index``). The optimizer's
    slots (``.../Adam``, ``.../Adam_1``, ``beta*_power``) are skipped unless asked for.
    """
    prefix = str(prefix)
    index = Path(prefix + ".index").read_bytes()
    footer = index[-48:]
    if struct.unpack("<Q", footer[-8:])[0] != _TABLE_MAGIC:
        raise ValueError(f"{prefix}.index is not a TensorFlow checkpoint index")
    _, i = _varint(footer, 0)  # metaindex handle (offset, size): unused
    _, i = _varint(footer, i)
    index_offset, i = _varint(footer, i)
    index_size, _ = _varint(footer, i)
    entries = []
    for _, handle in _block(index, index_offset, index_size):
        offset, j = _varint(handle, 0)
        size, _ = _varint(handle, j)
        entries += _block(index, offset, size)
    shards: dict[int, bytes] = {}
    out: dict[str, np.ndarray] = {}
    for key, value in entries:
        name = key.decode()
        if not name:  # the header entry (BundleHeaderProto)
            continue
        if skip_optimizer and (name.endswith(("/Adam", "/Adam_1")) or name.startswith("beta")):
            continue
        # BundleEntryProto fields: dtype 1, shape 2, shard 3, offset 4, size 5, slices 7
        f = dict(_proto_fields(value))
        if 7 in f:
            raise ValueError(f"{name}: sliced tensors are not supported")
        dtype = _DTYPES.get(int(f.get(1, 0)))
        if dtype is None:
            raise ValueError(f"{name}: unsupported dtype enum {f.get(1)}")
        dims = [int(dict(_proto_fields(d)).get(1, 0))
                for n, d in _proto_fields(f.get(2, b"")) if n == 2]
        shard = int(f.get(3, 0))
        if shard not in shards:
            shards[shard] = Path(f"{prefix}.data-{shard:05d}-of-00001").read_bytes()
        offset, size = int(f.get(4, 0)), int(f.get(5, 0))
        array = np.frombuffer(shards[shard], dtype=dtype, count=size // np.dtype(dtype).itemsize,
                              offset=offset)
        out[name] = array.reshape(dims).copy()
    return out


# -- the network ---------------------------------------------------------------------------------
def _bn(c: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(c, eps=1e-3)  # tf.layers.batch_normalization's default epsilon


def _pad_time(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """TensorFlow's 'same' padding along time (dim 2) for a stride-1 kernel: the odd sample of
    an even kernel's padding goes after."""
    total = kernel - 1
    return F.pad(x, (0, 0, total // 2, total - total // 2))


class Musicnn(nn.Module):
    """The musicnn network (Pons et al. 2018; Pons & Serra 2019) as in the 0.1.0 checkpoints.

    (B, T, 96) log-mel patches (T = 187 in training) -> (B, n_tags) logits (sigmoid outside).
    Front end: batch norm of the input (one channel); two timbral convs over 7 frames x 38 and
    67 mel bands (204 maps each, max over frequency) and three temporal convs over 128, 64 and
    32 frames x 1 band (51 maps each), each conv followed by ReLU, batch norm, then the max over
    frequency. Mid end: three 7-frame convs (64 maps, ReLU, BN), the 2nd and 3rd residual; the front
    end's 561 maps and the three mid-end outputs are concatenated (753). Back end: max and mean
    over time, interleaved per map (1506), BN, dense 200 + ReLU, BN, dense to the tags.
    """

    def __init__(self, n_mels: int = N_MELS, n_tags: int = 50, timbral_maps: int = 204,
                 temporal_maps: int = 51, midend_maps: int = 64, backend_units: int = 200):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=1e-3)
        self.timbral = nn.ModuleList(
            nn.Conv2d(1, timbral_maps, (7, int(r * n_mels))) for r in (0.4, 0.7))
        # batch norm before the max over frequency: some gammas are negative, so the two do not
        # commute
        self.timbral_bn = nn.ModuleList(nn.BatchNorm2d(timbral_maps, eps=1e-3) for _ in range(2))
        self.temporal_kernels = (128, 64, 32)
        self.temporal = nn.ModuleList(
            nn.Conv2d(1, temporal_maps, (k, 1)) for k in self.temporal_kernels)
        self.temporal_bn = nn.ModuleList(nn.BatchNorm2d(temporal_maps, eps=1e-3) for _ in range(3))
        front = 2 * timbral_maps + 3 * temporal_maps  # 561
        self.midend = nn.ModuleList(
            nn.Conv1d(c, midend_maps, 7) for c in (front, midend_maps, midend_maps))
        self.midend_bn = nn.ModuleList(_bn(midend_maps) for _ in range(3))
        pooled = 2 * (front + 3 * midend_maps)  # 1506
        self.pool_bn = _bn(pooled)
        self.dense = nn.Linear(pooled, backend_units)
        self.dense_bn = _bn(backend_units)
        self.head = nn.Linear(backend_units, n_tags)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.input_bn(mel[:, None])  # (B, 1, T, 96)
        maps = []
        padded = F.pad(x, (0, 0, 3, 3))  # 7-frame convs keep T
        for conv, bn in zip(self.timbral, self.timbral_bn):
            maps.append(bn(F.relu(conv(padded))).amax(dim=3))  # (B, 204, T)
        for k, conv, bn in zip(self.temporal_kernels, self.temporal, self.temporal_bn):
            maps.append(bn(F.relu(conv(_pad_time(x, k)))).amax(dim=3))  # (B, 51, T)
        front = torch.cat(maps, dim=1)  # (B, 561, T)
        y = self.midend_bn[0](F.relu(self.midend[0](F.pad(front, (3, 3)))))  # (B, 64, T)
        feats = [front, y]
        for conv, bn in zip(self.midend[1:], self.midend_bn[1:]):
            y = bn(F.relu(conv(F.pad(y, (3, 3))))) + y
            feats.append(y)
        h = torch.cat(feats, dim=1)  # (B, 753, T)
        pooled = torch.stack([h.amax(dim=2), h.mean(dim=2)], dim=2).flatten(1)  # (B, 1506)
        z = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))  # (B, 200)
        return self.head(z)  # (B, n_tags)


def _checkpoint_names() -> dict[str, tuple[str, str]]:
    """torch module -> (checkpoint layer, kind); TF numbers layers in creation order."""
    names = {"input_bn": ("batch_normalization", "bn")}
    convs = ["timbral.0", "timbral.1", "temporal.0", "temporal.1", "temporal.2",
             "midend.0", "midend.1", "midend.2"]
    bns = ["timbral_bn.0", "timbral_bn.1", "temporal_bn.0", "temporal_bn.1", "temporal_bn.2",
           "midend_bn.0", "midend_bn.1", "midend_bn.2", "pool_bn", "dense_bn"]
    names.update({m: ("conv2d" + (f"_{i}" if i else ""), "conv") for i, m in enumerate(convs)})
    names.update({m: (f"batch_normalization_{i + 1}", "bn") for i, m in enumerate(bns)})
    names.update({"dense": ("dense", "dense"), "head": ("dense_1", "dense")})
    return names


def load_musicnn(prefix: str | Path) -> Musicnn:
    """A ``Musicnn`` in eval mode with the weights of a musicnn checkpoint (every tensor used
    once, every shape checked)."""
    tensors = read_tf_checkpoint(prefix)
    model = Musicnn(n_tags=tensors["dense_1/bias"].shape[0]).eval()
    modules = dict(model.named_modules())
    used: set[str] = set()

    def put(param: torch.Tensor, name: str, array: np.ndarray | None = None) -> None:
        array = tensors[name] if array is None else array
        used.add(name)
        if tuple(param.shape) != array.shape:
            raise ValueError(f"{prefix}: {name} has shape {array.shape}, "
                             f"{tuple(param.shape)} was expected")
        param.data.copy_(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)))

    with torch.no_grad():
        for module, (layer, kind) in _checkpoint_names().items():
            m = modules[module]
            if kind == "conv":  # (kh, kw, in, out) -> (out, in, kh, kw); mid end: (7, C, 1, out)
                k = tensors[layer + "/kernel"]
                k = k.transpose(3, 2, 0, 1) if m.weight.ndim == 4 else k[:, :, 0].transpose(2, 1, 0)
                put(m.weight, layer + "/kernel", k)
                put(m.bias, layer + "/bias")
            elif kind == "dense":  # (in, out) -> (out, in)
                put(m.weight, layer + "/kernel", tensors[layer + "/kernel"].T)
                put(m.bias, layer + "/bias")
            else:
                put(m.weight, layer + "/gamma")
                put(m.bias, layer + "/beta")
                put(m.running_mean, layer + "/moving_mean")
                put(m.running_var, layer + "/moving_variance")
    if set(tensors) - used:
        raise ValueError(f"{prefix}: tensors not used by Musicnn: {sorted(set(tensors) - used)}")
    return model


def musicnn_checkpoint(model: str = "MSD_musicnn") -> Path:
    """The checkpoint prefix of ``model`` inside the installed musicnn package, found without
    importing it (its extractor imports tensorflow)."""
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"music-musicnn-v1 needs the checkpoints shipped in the musicnn "
                                  f"package: {INSTALL_HINT}", name="musicnn")
    folder = Path(next(iter(spec.submodule_search_locations))) / model
    if not (folder / ".index").is_file():
        raise FileNotFoundError(f"no checkpoint in {folder}; reinstall with {INSTALL_HINT}")
    return folder


# -- front end -----------------------------------------------------------------------------------
_FILTERS: dict[str, torch.Tensor] = {}


def mel_filters() -> torch.Tensor:
    """(257, 96) Slaney mel filterbank (Slaney's mel scale, area-normalised), 0-8 kHz."""
    if "slaney" not in _FILTERS:
        import torchaudio

        _FILTERS["slaney"] = torchaudio.functional.melscale_fbanks(
            N_FFT // 2 + 1, 0.0, SR / 2, N_MELS, SR, norm="slaney", mel_scale="slaney")
    return _FILTERS["slaney"]


def log_mel(wav: np.ndarray | torch.Tensor) -> torch.Tensor:
    """16 kHz mono waveform (N,) -> (frames, 96) musicnn input: mel power of centred, zero-padded
    frames, rounded to float16 as the original extractor stores it, then log10(10000 x + 1) in
    float32 (as NumPy 1.x evaluates it on that float16 array)."""
    x = torch.as_tensor(np.asarray(wav, dtype=np.float32))
    spec = torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True,
                      pad_mode="constant", return_complex=True)  # (257, frames)
    mel = spec.abs().pow(2).T @ mel_filters()  # (frames, 96)
    mel = mel.to(torch.float16).to(torch.float32)
    return torch.log10(10000.0 * mel + 1.0)


def patches(mel: torch.Tensor, frames: int = PATCH_FRAMES) -> torch.Tensor:
    """(T, 96) -> (P, frames, 96) non-overlapping patches from the start; the tail is dropped."""
    n = (mel.shape[0] - frames) // frames + 1
    if n < 1:
        raise ValueError(f"{mel.shape[0]} mel frames; at least {frames} (3 s) are needed")
    return mel[: n * frames].reshape(n, frames, mel.shape[1])


# -- the recognizer ------------------------------------------------------------------------------
@dataclass
class MusicnnReading:
    valence: float
    arousal: float
    probabilities: dict[str, float]  # the nine categories, sum 1
    category: str
    tags: dict[str, float]  # "msd/<tag>" and "mtt/<tag>" -> probability averaged over patches
    poles: dict[str, float] = field(default_factory=dict)  # pole scores behind valence/arousal
    n_patches: int = 0
    dominance: float | None = None
    recognizer: str = "music-musicnn-v1"

    def as_spec(self) -> EmotionSpec:
        kept = {k: p for k, p in self.probabilities.items() if p >= 0.01}
        return EmotionSpec.from_contributions(kept, notes=(f"read by {self.recognizer}",))


def _pole(tags: dict[str, float], weights: dict[str, float]) -> float:
    return sum(w * tags[k] for k, w in weights.items()) / sum(weights.values())


def tags_to_va(tags: dict[str, float]) -> tuple[float, float, dict[str, float]]:
    """The mapping rule of the module docstring: (valence, arousal, pole scores)."""
    poles = {"valence+": _pole(tags, VALENCE_POS), "valence-": _pole(tags, VALENCE_NEG),
             "arousal+": _pole(tags, AROUSAL_POS), "arousal-": _pole(tags, AROUSAL_NEG)}

    def balance(axis: str) -> float:
        pos, neg = poles[axis + "+"], poles[axis + "-"]
        return float((pos - neg) / (pos + neg + EPSILON))

    return balance("valence"), balance("arousal"), poles


_NETWORKS: dict[str, Musicnn] = {}


class MusicnnRecognizer:
    """music-musicnn-v1: MSD_musicnn and MTT_musicnn tags -> valence, arousal, categories."""

    name = "music-musicnn-v1"
    medium = "music"
    source = ("musicnn MSD_musicnn + MTT_musicnn taggers (Pons & Serra 2019), TF1 checkpoints "
              "shipped in the musicnn PyPI package 0.1.0, read into torch by this project")
    licence = "ISC (weights from the musicnn package)"

    def __init__(self, networks: dict[str, Musicnn]):
        self.networks = {k: m.eval() for k, m in networks.items()}

    @classmethod
    def from_pretrained(cls) -> MusicnnRecognizer:
        """Both networks from the installed musicnn package (loaded once per process)."""
        for model, _ in MODELS.values():
            if model not in _NETWORKS:
                _NETWORKS[model] = load_musicnn(str(musicnn_checkpoint(model)) + "/")
        return cls({key: _NETWORKS[model] for key, (model, _) in MODELS.items()})

    def taggram(self, mel_patches: torch.Tensor) -> dict[str, np.ndarray]:
        """(P, 187, 96) patches -> model key -> (P, 50) tag probabilities."""
        with torch.inference_mode():
            return {k: torch.sigmoid(net(mel_patches)).numpy() for k, net in self.networks.items()}

    def __call__(self, audio, sample_rate: int | None = None) -> MusicnnReading:
        """Read a clip.

        Args:
            audio: a path (wav, flac, ogg, mp3) or an array with its ``sample_rate``; mixed to
                mono and resampled to 16 kHz. At least 3 s.
            sample_rate: of an array.
        Returns:
            ``MusicnnReading``: valence and arousal in [-1, 1], the nine category probabilities,
            every tag's probability averaged over the clip's 3 s patches, the pole scores.
        """
        a = load_audio(audio, sample_rate, target_sr=SR, min_seconds=MIN_SECONDS)
        x = patches(log_mel(a.wav))  # (P, 187, 96)
        grams = self.taggram(x)
        tags = {f"{k}/{t}": float(p) for k, g in grams.items()
                for t, p in zip(MODELS[k][1], g.mean(axis=0))}
        v, ar, poles = tags_to_va(tags)
        p = va_probabilities(v, ar)
        return MusicnnReading(v, ar, p, max(p, key=p.get), tags, poles, int(x.shape[0]),
                              recognizer=self.name)
