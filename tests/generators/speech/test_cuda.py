"""The speech pipeline on a CUDA GPU (runs where one is present): the conversion agrees with the
CPU's, float16 HiFi-GAN stays close to float32, and repeated jobs do not hold on to memory."""

import numpy as np
import pytest
import soundfile as sf
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _logmel(wav: np.ndarray) -> np.ndarray:
    from generators.speech.vocoder import MelSpectrogram

    return MelSpectrogram()(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))).numpy()


def test_a_conversion_on_cuda_agrees_with_the_cpu(real_clip):
    from generators.speech import EmotionVoiceConversionPipeline

    wav, sr = sf.read(real_clip, dtype="float32")
    cpu = EmotionVoiceConversionPipeline.from_pretrained()
    gpu = EmotionVoiceConversionPipeline.from_pretrained().to("cuda")
    for p in (cpu, gpu):
        p.set_progress_bar_config(disable=True)

    def run(pipe, **kw):
        return pipe(wav, sr, emotion="angry@1", generator=torch.Generator().manual_seed(0), **kw)

    a, b, c = run(cpu), run(gpu), run(gpu, vocoder_precision="float32")
    assert np.abs(a.changes - b.changes).max() < 2e-3  # the same noise, the same denoiser
    assert a.audio.shape == b.audio.shape == c.audio.shape
    ref = _logmel(a.audio)
    assert np.abs(_logmel(c.audio) - ref).mean() < 0.01  # float32 on both devices
    assert np.abs(_logmel(b.audio) - ref).mean() < 0.06  # float16 HiFi-GAN on the GPU
    assert np.isfinite(b.audio).all() and 20 * np.log10(np.abs(b.audio).max()) <= -1.0 + 1e-3
    torch.cuda.synchronize()
    held = torch.cuda.memory_allocated()
    for seed in range(3):
        gpu(wav, sr, emotion="sad@0.8", generator=torch.Generator().manual_seed(seed))
    assert torch.cuda.memory_allocated() <= held + 2**20  # repeated jobs hold no more
