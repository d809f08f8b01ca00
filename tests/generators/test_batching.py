"""``pipe.batch``: several calls of one medium through the denoiser together, on the embedded
defaults (the tiny test denoisers output zeros, which any batching would reproduce).

Each call keeps its own generator, so a batched result must match the same call alone up to
the rounding of a larger batch's kernels; the denoiser must see one forward pass per step for
the whole batch; a call that fails must fail alone."""

from pathlib import Path

import numpy as np
import pytest
import torch

LIBRIVOX = sorted(Path("/usr/share/pocketsphinx/test/data/librivox").glob("*.wav"))
EMOTIONS = ["angry@0.8", "sad@0.8", "happy@0.9"]


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def clips():
    if len(LIBRIVOX) < 3:
        pytest.fail("pocketsphinx-testdata is missing: run .ci/setup (it installs it)")
    return LIBRIVOX[1], LIBRIVOX[2]


def count_forwards(module, monkeypatch) -> list[int]:
    """The batch size of every forward pass ``module`` makes from now on."""
    sizes: list[int] = []
    real = module.forward

    def spy(sample, *args, **kwargs):
        sizes.append(sample.shape[0])
        return real(sample, *args, **kwargs)

    monkeypatch.setattr(module, "forward", spy)
    return sizes


def test_music_pieces_of_one_length_share_the_unet_and_match_alone(monkeypatch):
    from generators.music.pipeline_music import MusicPipeline

    pipe = MusicPipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    calls = [dict(emotion=e, num_bars=2, num_inference_steps=4, generator=g(i), output_type="midi")
             for i, e in enumerate(EMOTIONS)]
    alone = [pipe(**{**c, "generator": g(i)}) for i, c in enumerate(calls)]
    sizes = count_forwards(pipe.unet, monkeypatch)
    batched = pipe.batch(calls)
    assert [b.midi for b in batched] == [a.midi for a in alone]  # byte-identical MIDI
    assert [b.key for b in batched] == [a.key for a in alone]
    # 4 steps, guidance doubles the batch: 3 pieces -> 6 rows a pass (more only for silent-bar re-writes)
    assert sizes[:4] == [6, 6, 6, 6]
    # different lengths cannot share a pass: each length is its own batch, both still right
    mixed = pipe.batch([{**calls[0], "generator": g(0)}, {**calls[1], "num_bars": 3, "generator": g(1)}])
    assert mixed[0].midi == alone[0].midi and mixed[1].num_bars == 3


def test_a_failing_call_fails_alone():
    from generators.music.pipeline_music import MusicPipeline

    pipe = MusicPipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    out = pipe.batch([dict(emotion="calm@0.5", num_bars=2, num_inference_steps=2, generator=g(0),
                           output_type="midi"),
                      dict(emotion="furious_xyz", num_bars=2, output_type="midi"),
                      dict(emotion="sad@0.5", num_bars=99, output_type="midi")])
    assert out[0].midi.startswith(b"MThd")
    assert isinstance(out[1], ValueError) and "furious_xyz" in str(out[1])
    assert isinstance(out[2], ValueError) and "num_bars" in str(out[2])


def test_speech_conversions_of_one_recording_share_the_denoiser_and_match_alone(clips, monkeypatch):
    from generators.speech.pipeline_speech import EmotionVoiceConversionPipeline

    pipe = EmotionVoiceConversionPipeline.from_pretrained()
    calls = [dict(audio=str(clips[0]), emotion=e, num_inference_steps=3, generator=g(i), vocoder="world")
             for i, e in enumerate(EMOTIONS)]
    calls.append(dict(audio=str(clips[1]), emotion="sad@0.8", num_inference_steps=3, generator=g(7),
                      vocoder="world"))
    alone = [pipe(**{**c, "generator": g(s)}) for c, s in zip(calls, (0, 1, 2, 7))]
    sizes = count_forwards(pipe.denoiser, monkeypatch)
    batched = pipe.batch(calls + [dict(audio=str(clips[0]) + ".missing", emotion="sad")])
    for a, b in zip(alone, batched):
        assert np.abs(a.changes - b.changes).max() < 1e-4  # rounding only; the changes span ~1
        assert np.abs(a.changes).max() > 0.05  # a real model moved the prosody
    assert not np.allclose(batched[0].changes, batched[1].changes, atol=0.05)  # emotions differ
    # the three of one recording in one pass a step (x2 for guidance), the other recording apart
    assert sorted(set(sizes)) == [2, 6] and len(sizes) == 6
    assert isinstance(batched[-1], Exception)


def test_talking_heads_of_one_line_share_the_denoiser_and_match_alone(clips, monkeypatch):
    from skimage import data

    from generators.face.pipeline_face import TalkingHeadPipeline
    from generators.face.portrait import analyse_portrait

    pipe = TalkingHeadPipeline.from_pretrained()
    portrait = analyse_portrait(data.astronaut(), face_resolution=128)
    calls = [dict(image=None, portrait=portrait, audio=str(clips[0]), emotion=e, num_inference_steps=3,
                  generator=g(i), seed=i) for i, e in enumerate(EMOTIONS)]
    alone = [pipe(**{**c, "generator": g(i)}) for i, c in enumerate(calls)]
    sizes = count_forwards(pipe.denoiser, monkeypatch)
    batched = pipe.batch(calls)
    for a, b in zip(alone, batched):
        assert np.abs(a.params - b.params).max() < 1e-4
        assert np.array_equal(a.blink, b.blink) and np.array_equal(a.head, b.head)
    assert sizes == [6, 6, 6]
    assert np.array_equal(batched[0].frame(10), alone[0].frame(10))
