"""EmotionBank: prototypes + attention as a conditioning module."""

import torch

from conditioning import CATEGORIES, EmotionBank, EmotionSpec


def test_shapes_null_condition_and_gradients():
    torch.manual_seed(0)
    bank = EmotionBank(embed_dim=16, prototypes_per_category=3, num_heads=2)
    specs = [
        EmotionSpec.from_category("happy", 1.0),
        EmotionSpec.from_category("sad", 0.5),
        EmotionSpec.neutral(),
    ]
    c, vad = EmotionBank.spec_tensors(specs)
    out, attn = bank(c, vad, return_attention=True)
    assert out.shape == (3, 16) and attn.shape == (3, len(CATEGORIES) * 3)
    assert torch.allclose(attn.sum(-1), torch.ones(3))
    dropped = bank(c, vad, drop=torch.tensor([True, False, False]))
    assert torch.equal(dropped[0], bank.null) and torch.equal(dropped[1], out[1])
    (out * torch.randn_like(out)).sum().backward()  # (a plain sum is constant after LayerNorm)
    assert bank.prototypes.grad is not None and bank.prototypes.grad.abs().sum() > 0


def test_different_emotions_give_different_conditions():
    torch.manual_seed(0)
    bank = EmotionBank(embed_dim=16, prototypes_per_category=2, num_heads=2)
    c, vad = EmotionBank.spec_tensors(
        [EmotionSpec.from_category("happy", 1.0), EmotionSpec.from_category("angry", 1.0)]
    )
    out = bank(c, vad)
    assert not torch.allclose(out[0], out[1])
    sim = bank.category_similarity()
    assert sim.shape == (len(CATEGORIES), len(CATEGORIES))
    assert torch.allclose(torch.diagonal(sim), torch.ones(len(CATEGORIES)), atol=1e-5)


def test_deterministic_with_a_seed():
    torch.manual_seed(3)
    a = EmotionBank(embed_dim=8, prototypes_per_category=2, num_heads=2)
    torch.manual_seed(3)
    b = EmotionBank(embed_dim=8, prototypes_per_category=2, num_heads=2)
    c, vad = EmotionBank.spec_tensors([EmotionSpec.from_category("calm", 0.4)])
    assert torch.equal(a(c, vad), b(c, vad))
