"""Emotional talking heads: a portrait's face mesh, a FACS expression rig, a motion diffusion model
driven by speech and the shared emotion space, and a piecewise-affine renderer."""

from generators.face.pipeline_face import FaceOutput, TalkingHeadPipeline

__all__ = ["FaceOutput", "TalkingHeadPipeline"]
