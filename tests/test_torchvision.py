"""Real architectures: resnet18's published numbers, and MACs equal to PyTorch's own
FlopCounterMode (which counts every matmul and convolution) / 2 on models where both
counters cover every multiply-accumulating operator."""

from __future__ import annotations

import pytest
import torch
import torchvision

import torchtally as tt
from helpers import flop_counter_macs


def test_resnet18_published_numbers() -> None:
    model = torchvision.models.resnet18()
    report = tt.analyze(model, input_size=(1, 3, 224, 224))
    # torchvision's model card: 11,689,512 parameters, 1.81 GFLOPS (multiply-adds) at 224x224.
    assert report.total_params == 11_689_512
    assert report.total_macs == pytest.approx(1.814e9, rel=1e-3)
    assert report.total_macs == flop_counter_macs(model.eval(), torch.randn(1, 3, 224, 224))
    assert report.uncounted_ops == {}
    assert report.execution == "fake"


# Built on the meta device (no weights, no init cost); both counters run on meta inputs.
CNNS = [
    ("resnet50", 224),
    ("mobilenet_v2", 224),
    ("mobilenet_v3_small", 224),
    ("efficientnet_b0", 224),
    ("convnext_tiny", 224),
    ("squeezenet1_1", 224),
    ("shufflenet_v2_x1_0", 224),
    ("densenet121", 224),
    ("mnasnet0_5", 224),
    ("vgg11", 224),
    ("swin_t", 224),
    ("resnext50_32x4d", 224),
]


@pytest.mark.parametrize("name,size", CNNS)
def test_macs_match_flop_counter(name: str, size: int) -> None:
    with torch.device("meta"):
        model = torchvision.models.get_model(name).eval()
    report = tt.analyze(model, (1, 3, size, size))
    assert report.total_macs == flop_counter_macs(model, torch.empty(1, 3, size, size, device="meta"))
    assert report.uncounted_ops == {}
    assert report.device == "meta"


def test_vision_transformer_attention_fast_path() -> None:
    """Inference through nn.MultiheadAttention takes the fused `_native_multi_head_attention`
    kernel on CPU, which FlopCounterMode does not count: our total = its total / 2 plus the
    attention blocks, derived from the architecture."""
    layers, heads, hidden, mlp, image, patch, batch = 2, 4, 64, 128, 32, 8, 2
    model = torchvision.models.VisionTransformer(
        image_size=image, patch_size=patch, num_layers=layers, num_heads=heads, hidden_dim=hidden, mlp_dim=mlp
    ).eval()
    report = tt.analyze(model, (batch, 3, image, image))
    assert report.operators["aten._native_multi_head_attention"].calls == layers
    tokens = (image // patch) ** 2 + 1  # patches + class token
    # per block: q, k, v and output projections (4 x tokens x hidden^2) + the two attention
    # products (2 x tokens^2 x hidden, summed over heads)
    attention = batch * layers * (4 * tokens * hidden * hidden + 2 * tokens * tokens * hidden)
    counted_by_pytorch = flop_counter_macs(model, torch.randn(batch, 3, image, image))
    assert report.total_macs == counted_by_pytorch + attention
    assert report.operators["aten._native_multi_head_attention"].macs == attention


def test_detection_model_falls_back_to_a_real_run() -> None:
    """Detection post-processing (nonzero, nms) has data-dependent shapes: no fake run can do it."""
    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=3
    )
    report = tt.analyze(model, input_data=([torch.rand(3, 160, 160)],))
    assert report.execution == "real"
    assert report.fallback_reason and "needs real values" in report.fallback_reason
    assert report.layer("backbone").macs > 0
    # torchvision's own kernels have no formula: reported as uncounted, never as zero
    assert "torchvision.nms" in report.uncounted_ops
    assert report.total_params == sum(p.numel() for p in model.parameters())
