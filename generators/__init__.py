"""Generators, one sub-package per medium (speech/, music/, face/), each following the same
pipeline contract: ``from_pretrained`` / ``save_pretrained`` / ``.to(device)`` and one
``__call__(..., emotion=..., intensity=..., num_inference_steps=..., guidance_scale=...,
generator=..., return_dict=True)`` returning a dataclass. Media land with their issues."""
