"""Emotional voice conversion: a prosody diffusion model steered by the shared emotion space,
WORLD analysis/modification and the HiFi-GAN neural vocoder."""

from generators.speech.pipeline_speech import EmotionVoiceConversionPipeline, SpeechOutput

__all__ = ["EmotionVoiceConversionPipeline", "SpeechOutput"]
