"""The cases of the seed documents, with every number derived by hand."""

from __future__ import annotations

import torchtally as tt
from seed_models import SharedConv, SmallCNN, TwoConvs, UnusedConv

# One 3x3 conv (1 -> 1 channel, padding 1) on 512x512: 512*512 outputs, 9 MACs each.
ONE_CONV_MACS = 512 * 512 * 9


def test_two_convs() -> None:
    report = tt.analyze(TwoConvs(), (1, 1, 512, 512))
    assert report.total_params == 18  # 2 convs x 3*3 weights, no bias
    assert report.total_macs == 2 * ONE_CONV_MACS
    assert report.total_flops == 2 * report.total_macs  # only convolutions run
    assert report.layer("conv1").output_shape == (1, 1, 512, 512)
    assert report.layer("conv2").macs == ONE_CONV_MACS


def test_conv_called_twice_counts_params_once_and_both_calls() -> None:
    report = tt.analyze(SharedConv(), (1, 1, 512, 512))
    conv = report.layer("conv1")
    assert report.total_params == 9  # the same 3x3 weight, counted once
    assert conv.calls == 2
    assert conv.macs == 2 * ONE_CONV_MACS  # the second call is real work
    assert report.total_macs == 2 * ONE_CONV_MACS
    assert conv.input_shapes == (((1, 1, 512, 512),), ((1, 1, 512, 512),))
    assert report.used_params == 9 and report.unused_params == 0


def test_unused_layer_is_counted_and_named() -> None:
    report = tt.analyze(UnusedConv(), (1, 1, 512, 512))
    assert report.total_params == 18
    assert report.used_params == 9
    assert report.unused_params == 9
    assert report.unused_modules == ("conv2",)
    assert report.layer("conv2").calls == 0
    assert report.total_macs == ONE_CONV_MACS


def test_small_cnn_of_seed_003() -> None:
    report = tt.analyze(SmallCNN(), (1, 3, 32, 32))
    assert report.total_params == 268_650
    # (in*kh*kw + 1)*out and (in + 1)*out, as worked in the seed
    assert report.layer("conv1").params == (3 * 3 * 3 + 1) * 16 == 448
    assert report.layer("conv2").params == (16 * 3 * 3 + 1) * 32 == 4_640
    assert report.layer("fc1").params == (32 * 8 * 8 + 1) * 128 == 262_272
    assert report.layer("fc2").params == (128 + 1) * 10 == 1_290
    # Hout = (Hin + 2*padding - kernel)/stride + 1 = (32 + 2 - 3)/1 + 1 = 32; pooling halves it.
    assert report.layer("conv1").output_shape == (1, 16, 32, 32)
    assert report.layer("conv2").output_shape == (1, 32, 16, 16)
    assert report.layer("fc1").output_shape == (1, 128)
    assert report.layer("fc2").output_shape == (1, 10)
    # MACs: conv1 16*32*32 outputs x 3*3*3; conv2 32*16*16 x 16*3*3; fc1 2048*128; fc2 128*10
    assert report.layer("conv1").macs == 16 * 32 * 32 * 27
    assert report.layer("conv2").macs == 32 * 16 * 16 * 144
    assert report.total_macs == 16 * 32 * 32 * 27 + 32 * 16 * 16 * 144 + 2048 * 128 + 128 * 10
