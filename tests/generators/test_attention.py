"""The attention backend: xformers on CUDA where it loads, PyTorch SDPA otherwise, "none" for the
convolutional denoisers; always said, never silently mixed."""

import importlib.util

from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0

from generators.pipeline_utils import set_attention_backend


def _plain(pipe):
    """The unet's attention set to the plain processor, to see it replaced."""
    for m in pipe.unet.modules():
        if isinstance(m, Attention):
            m.set_processor(AttnProcessor())


def _processors(pipe):
    return [type(m.processor) for m in pipe.unet.modules() if isinstance(m, Attention)]


def test_the_music_unet_runs_its_attention_on_sdpa_here(tiny_music_pipeline):
    _plain(tiny_music_pipeline)
    assert set_attention_backend(tiny_music_pipeline) == "sdpa"
    assert _processors(tiny_music_pipeline) == [AttnProcessor2_0]  # the middle block's one layer


def test_xformers_that_does_not_load_falls_back_to_sdpa(tiny_music_pipeline, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "xformers" else real(name, *a))

    def broken():
        raise RuntimeError("xformers built for another CUDA")

    monkeypatch.setattr(tiny_music_pipeline, "enable_xformers_memory_efficient_attention", broken)
    _plain(tiny_music_pipeline)
    assert set_attention_backend(tiny_music_pipeline, prefer_xformers=True) == "sdpa"
    assert _processors(tiny_music_pipeline) == [AttnProcessor2_0]


def test_xformers_is_taken_where_it_loads(tiny_music_pipeline, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "xformers" else real(name, *a))
    called = []
    monkeypatch.setattr(tiny_music_pipeline, "enable_xformers_memory_efficient_attention", lambda: called.append(1))
    assert set_attention_backend(tiny_music_pipeline, prefer_xformers=True) == "xformers" and called == [1]
    # on a CPU it is not even tried
    assert set_attention_backend(tiny_music_pipeline) == "sdpa" and called == [1]


def test_the_convolutional_denoisers_have_no_attention(tiny_speech_pipeline, tiny_face_pipeline):
    assert set_attention_backend(tiny_speech_pipeline) == "none"
    assert set_attention_backend(tiny_face_pipeline) == "none"
