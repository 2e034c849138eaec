"""How the command line builds what MODEL names: what a model's construction says, and the
usual inputs of Hugging Face model types (audio, video, images, several inputs)."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest
import torch

import torchtally as tt
from torchtally.cli import main
from torchtally.cli.errors import EXIT_OK

WARNS = textwrap.dedent(
    """
    import warnings
    import torch

    class Noisy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            warnings.warn("this layer is deprecated", FutureWarning)
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x)
    """
)


@pytest.mark.parametrize("debug", [False, True])
def test_warnings_of_a_models_construction_show_only_with_debug(
    debug: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "noisy.py").write_text(WARNS)
    argv = [f"{tmp_path / 'noisy.py'}:Noisy", "--input-size", "1", "4"] + (["--debug"] if debug else [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(argv) == EXIT_OK
    shown = [str(w.message) for w in caught if "deprecated" in str(w.message)]
    assert shown == (["this layer is deprecated"] if debug else [])
    assert "deprecated" not in capsys.readouterr().err


# -- Hugging Face usual inputs: from main_input_name and the config --------------------------

transformers = pytest.importorskip("transformers")

from torchtally.cli.models import ModelOptions, build  # noqa: E402


def _inputs(spec: str, **overrides: object) -> list[tuple[str | None, tuple[int, ...]]]:
    built = build(spec, ModelOptions(overrides=dict(overrides)))
    assert built.inputs is not None
    return [(shape.name, shape.shape) for shape in built.inputs]


def test_a_waveform_model_gets_a_second_of_audio() -> None:
    # wav2vec2's main input is input_values, a waveform; no rate in its config: 16 kHz
    assert _inputs("hf:wav2vec2", num_hidden_layers=1) == [(None, (1, 16_000))]


def test_a_log_mel_model_gets_its_mel_bins_and_frames() -> None:
    # Whisper: input_features (1, num_mel_bins, 2 x max_source_positions) and decoder ids
    # within max_target_positions; 64 mel bins and 100 positions give (1, 64, 200)
    found = _inputs("hf:whisper", num_mel_bins=64, max_source_positions=100, max_target_positions=40)
    assert found == [("input_features", (1, 64, 200)), ("decoder_input_ids", (1, 40))]


def test_a_video_model_gets_its_frame_count() -> None:
    # VideoMAE: (batch, num_frames, channels, height, width) from its config
    found = _inputs("hf:videomae", num_frames=4, image_size=32, patch_size=16, num_hidden_layers=1)
    assert found == [(None, (1, 4, 3, 32, 32))]


def test_a_dual_encoder_gets_token_ids_and_pixels() -> None:
    # CLIP compares text with images: both inputs, the image at vision_config.image_size,
    # the tokens within text_config.max_position_embeddings (77 < 128)
    found = _inputs("hf:clip")
    vision = transformers.CLIPVisionConfig()
    assert found == [("input_ids", (1, 77)), ("pixel_values", (1, 3, vision.image_size, vision.image_size))]


def test_a_sub_config_type_without_an_auto_class_finds_its_model_class() -> None:
    built = build("hf:clip_text_model", ModelOptions())
    assert type(built.module).__name__ == "CLIPTextModel"


def test_a_model_whose_input_cannot_be_guessed_is_told_what_to_pass(capsys: pytest.CaptureFixture[str]) -> None:
    # Perceiver's generic model takes `inputs` of any modality, which neither its config nor its
    # docstring shapes: the one-line error names it (a decision transformer was the example
    # until its docstring's shapes were read)
    assert main(["hf:perceiver"]) != EXIT_OK
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--input-size inputs=" in err and "'inputs'" in err


# -- inputs derived from the config where the main input alone does not run ------------------

from torch import nn  # noqa: E402

from torchtally.cli.hf_inputs import default_inputs, input_hint  # noqa: E402
from torchtally.cli.inputs import analyze_arguments  # noqa: E402


def test_a_vision_tower_keeping_the_default_main_input_gets_pixels() -> None:
    # Idefics3's vision transformer inherits main_input_name "input_ids" but its forward
    # takes pixel_values: an image at its config's image_size, not token ids
    assert _inputs("hf:idefics3_vision", image_size=32, patch_size=16, num_hidden_layers=1) == [(None, (1, 3, 32, 32))]


def test_a_forward_that_cannot_run_without_text_and_video_gets_both() -> None:
    # VideoPrism's CLIP-like forward requires pixel_values_videos and input_ids: the clip at
    # (batch, num_frames, 3, image_size, image_size), the ids within the text positions
    config = transformers.AutoConfig.for_model("videoprism")
    vision, text = config.vision_config, config.text_config
    found = _inputs("hf:videoprism")
    assert found == [
        ("pixel_values_videos", (1, vision.num_frames, 3, vision.image_size, vision.image_size)),
        ("input_ids", (1, min(128, text.max_position_embeddings))),
    ]


def test_a_whisper_like_encoder_without_source_positions_gets_mels_first() -> None:
    # its first Conv1d reads the 16 mel bins as channels: (1, mels, 2 x max_position_embeddings)
    found = _inputs("hf:voxtral_realtime_encoder", num_mel_bins=16, max_position_embeddings=50, num_hidden_layers=1)
    assert found == [(None, (1, 16, 100))]


def test_a_time_series_model_gets_its_context_window() -> None:
    # past_values: (batch, context_length, num_input_channels)
    assert _inputs("hf:patchtsmixer", context_length=16, num_input_channels=3) == [(None, (1, 16, 3))]


def test_pix2struct_gets_flattened_patches_and_decoder_ids() -> None:
    # each patch: its row and column index, then patch_embed_hidden_size pixels
    vision = transformers.Pix2StructVisionConfig()
    found = _inputs("hf:pix2struct")
    assert found[0] == ("flattened_patches", (1, vision.seq_len, 2 + vision.patch_embed_hidden_size))
    assert found[1][0] == "decoder_input_ids"


def test_a_tiled_image_model_gets_its_tiles_aspect_ratio_id_and_mask() -> None:
    # Mllama's vision model: one image in max_num_tiles tiles, its aspect-ratio id and tile mask
    config = transformers.MllamaVisionConfig()
    tiles, size = config.max_num_tiles, config.image_size
    assert _inputs("hf:mllama_vision_model", num_hidden_layers=1, num_global_layers=1) == [
        ("pixel_values", (1, 1, tiles, 3, size, size)), ("aspect_ratio_ids", (1, 1)), ("aspect_ratio_mask", (1, 1, tiles)),
    ]


def test_a_windowed_backbone_gets_an_image_of_whole_windows() -> None:
    # RF-DETR's default 518 px are 37 patches of 14, which 4 windows per side cannot split:
    # the largest size below in whole windows is 14 x 4 x 9 = 504
    assert _inputs("hf:rf_detr") == [(None, (1, 3, 504, 504))]


class _Config:
    pass


class _Tower(nn.Module):
    main_input_name = "pixel_values"

    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, 8, 16, stride=16)
        self.patch_embed.img_size = (64, 48)  # type: ignore[assignment]  # as timm's PatchEmbed keeps it

    def forward(self, pixel_values: object) -> object:
        return self.patch_embed(pixel_values)


def test_an_image_size_no_config_names_comes_from_the_built_patch_embedding() -> None:
    # no image_size in the config: the size the model's patch embedding was built for
    found = default_inputs(_Tower(), _Config())
    assert found is not None and found[0].shape == (1, 3, 64, 48)


class _GridTower(nn.Module):  # a Qwen2-VL-like vision tower: patches and the grid they came from
    def forward(self, hidden_states: object, grid_thw: object) -> object:
        return hidden_states


class _OptionalGrid(nn.Module):  # PaddleOCR-VL-like: the grid has a default, the patches need it
    main_input_name = "pixel_values"

    def forward(self, pixel_values: object, grid_thw: object = None) -> object:
        return pixel_values


class _Audio(nn.Module):
    main_input_name = "input_features"

    def forward(self, input_features: object, speaker_ids: object) -> object:
        return input_features


def test_a_forward_needing_what_no_default_can_guess_is_told_by_name() -> None:
    # no patch embedding to derive a grid from: the hint names both, and how to give the grid's values
    assert default_inputs(_GridTower(), _Config()) is None
    hint = input_hint(_GridTower())
    assert hint.startswith("--input-size hidden_states=... --input-size grid_thw=...")
    assert "'hidden_states' and 'grid_thw'" in hint and "reads the values of 'grid_thw'" in hint
    assert "grid_thw=torch.tensor(" in hint
    assert default_inputs(_OptionalGrid(), _Config()) is None
    assert "--input-size grid_thw=..." in input_hint(_OptionalGrid())
    # an audio model's example is audio-shaped, never an image
    assert default_inputs(_Audio(), _Config()) is None
    hint = input_hint(_Audio())
    assert hint.startswith("--input-size input_features=1x80x3000 --input-size speaker_ids=...") and "3x224x224" not in hint


class _PackedConfig:
    image_size = 16
    spatial_merge_size = 2


class _PackedTower(nn.Module):  # Qwen2-VL-like: patches packed with their grid, whose values the forward reads
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv3d(3, 8, (2, 4, 4), stride=(2, 4, 4))  # 2 frames x 4 x 4 pixels a patch

    def forward(self, hidden_states: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        x = self.proj(hidden_states.view(-1, 3, 2, 4, 4)).view(-1, 8)
        sizes = grid_thw.prod(-1).tolist()  # a value read: fake tensors alone have none
        return torch.cat([part.T @ part for part in x.split(sizes)])


class _FivePatchTower(nn.Module):  # PaddleOCR-VL-like: the patches as (batch, patches, channels, patch, patch)
    def __init__(self) -> None:
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, 8, 4, stride=4)

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor | None = None) -> torch.Tensor:
        """pixel_values (`torch.Tensor` of shape `(batch_size, sequence_length, image_channels, patch_size, patch_size)`):
        the patches."""
        return self.patch_embedding(pixel_values.flatten(0, 1))


def test_a_packed_vision_tower_gets_patches_and_the_grid_they_came_from_by_value() -> None:
    # image 16 px, patches of 4 merged 2 x 2: a grid of 4 x 4 patches of 3 channels x 2 frames x 4 x 4
    found = default_inputs(_PackedTower(), _PackedConfig())
    assert found is not None
    assert [(s.name, s.shape) for s in found] == [("hidden_states", (16, 96)), ("grid_thw", (1, 3))]
    assert found[1].values == ((1, 4, 4),) and found[1].text() == "grid_thw=[[1,4,4]]"
    five = default_inputs(_FivePatchTower(), _PackedConfig())
    assert five is not None and five[0].shape == (1, 16, 3, 4, 4) and five[1].values == ((1, 4, 4),)
    # analysed on the meta device: the grid travels by value and the forward reads it
    with torch.device("meta"):
        tower = _PackedTower()
    report = tt.analyze(tower, **analyze_arguments(found, tower))
    # conv: 16 patches x 8 channels x 96 inputs = 12288; part.T @ part: 8 x 8 x 16 = 1024
    assert report.execution == "fake" and report.total_macs == 16 * 8 * 96 + 8 * 8 * 16


def test_the_cli_analyses_a_vision_tower_that_reads_its_grid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hf:glm4v_moe_vision", "--set", "depth=1", "--format", "json"]) == EXIT_OK
    out = capsys.readouterr().out
    assert '"execution": "fake"' in out


class _CodePredictor(nn.Module):  # one embedding table per codebook: it is fed embeddings
    main_input_name = "input_ids"

    def __init__(self) -> None:
        super().__init__()
        self.codec_embedding = nn.ModuleList([nn.Embedding(10, 8) for _ in range(2)])

    def get_input_embeddings(self) -> nn.Module:
        return self.codec_embedding

    def forward(self, input_ids: object = None, inputs_embeds: object = None) -> object:
        return inputs_embeds


def test_a_model_with_a_table_per_codebook_gets_embeddings_by_name() -> None:
    config = _Config()
    config.hidden_size = 8  # type: ignore[attr-defined]
    found = default_inputs(_CodePredictor(), config)
    # (1, 128 tokens, hidden_size 8), by name: its first argument, input_ids, must stay None
    assert found is not None and [(s.name, s.shape) for s in found] == [("inputs_embeds", (1, 128, 8))]


class _TextAndClip(nn.Module):  # TVP-like: a clip and a query, neither optional in practice
    def forward(self, input_ids: object = None, pixel_values: object = None) -> object:
        return input_ids


def test_text_and_a_medium_are_both_given_unless_the_config_splices_the_medium_into_the_text() -> None:
    config = _Config()
    config.vocab_size = 1000  # type: ignore[attr-defined]
    found = default_inputs(_TextAndClip(), config)
    assert found is not None and [s.name for s in found] == ["input_ids", "pixel_values"]
    # a VLM names the token its images stand in for (in a sub-config too): its text runs alone
    vlm = _Config()
    vlm.text_config = {"image_token_id": 5}  # type: ignore[attr-defined]
    found = default_inputs(_TextAndClip(), vlm)
    assert found is not None and [(s.name, s.shape) for s in found] == [(None, (1, 128))]


class _Codec(nn.Module):  # DAC-like: the docs say (batch_size, 1, time_steps), not a bare waveform
    main_input_name = "input_values"

    def forward(self, input_values: object) -> object:
        """input_values (`torch.Tensor` of shape `(batch_size, 1, time_steps)`):
        audio."""
        return input_values


class _MelPatches(nn.Module):  # AST-like: mel frames, their count and bins named by the config
    main_input_name = "input_values"

    def forward(self, input_values: object) -> object:
        """input_values (`torch.Tensor` of shape `(batch_size, max_length, num_mel_bins)`):
        mel features."""
        return input_values


def test_an_audio_input_documented_with_other_dimensions_takes_the_documented_shape() -> None:
    config = _Config()
    config.sampling_rate = 8000  # type: ignore[attr-defined]
    found = default_inputs(_Codec(), config)  # a second at 8 kHz, in the documented (batch, 1, time)
    assert found is not None and found[0].shape == (1, 1, 8000)
    config.max_length, config.num_mel_bins = 96, 32  # type: ignore[attr-defined]
    found = default_inputs(_MelPatches(), config)
    assert found is not None and found[0].shape == (1, 96, 32)


class _Lengths(nn.Module):  # Flaubert-like: the forward reads the ids' values (lengths, a max)
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(1000, 8)
        self.out = nn.Linear(8, 8)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        lengths = (input_ids != 0).sum(dim=1)
        if int(lengths.max()) > input_ids.shape[1]:
            raise ValueError("longer than the batch")
        return self.out(self.embed(input_ids))


def test_token_ids_are_given_by_value_so_a_forward_may_read_them() -> None:
    config = _Config()
    config.vocab_size = 1000  # type: ignore[attr-defined]
    found = default_inputs(_Lengths(), config)
    assert found is not None and found[0].vocab == 1000
    ids = found[0].tensor()
    # the second quarter of the vocabulary: clear of the special tokens at either end
    assert ids.shape == (1, 128) and int(ids.min()) >= 250 and int(ids.max()) < 500
    with torch.device("meta"):
        model = _Lengths()
    report = tt.analyze(model, **analyze_arguments(found, model))
    assert report.execution == "fake" and report.total_macs == 128 * 8 * 8  # the linear: 128 tokens x 8 x 8


NO_FORWARD = textwrap.dedent(
    """
    import torch

    class Codebook(torch.nn.Module):  # used through encode(), as a VQ-VAE is
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(4, 2)

        def encode(self, x):
            return self.proj(x)
    """
)


def test_a_module_without_a_forward_is_said_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "codebook.py").write_text(NO_FORWARD)
    assert main([f"{tmp_path / 'codebook.py'}:Codebook", "--input-size", "1", "4"]) != EXIT_OK
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Codebook has no forward() (it is used through encode())" in err


class _LinearPatches(nn.Module):  # LFM-VL-like: a linear patch embedding, the layout documented as an expression
    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.Linear(3 * 2 * 4 * 4, 8)

    def forward(self, pixel_values: object, grid_thw: object) -> object:
        """pixel_values (`torch.Tensor` of shape `(num_patches, in_channels * temporal_patch_size * patch_size**2)`):
        the patches."""
        return pixel_values


class _TokenPatches(nn.Module):  # Inkling2-like: pixels per merged token, the grid counted in tokens
    def __init__(self) -> None:
        super().__init__()
        self.patch_embedding = nn.Linear(4 * 4 * 3, 8)

    def forward(self, pixel_values: object, image_grid_thw: object) -> object:
        """pixel_values (`torch.Tensor` of shape `(num_image_tokens, patch_size * spatial_merge_size, patch_size * spatial_merge_size, num_channels)`):
        the patches of each token."""
        return pixel_values


class _SquarePatches(nn.Module):  # Kimi-like: a 2-D convolution over (patches, channels, patch, patch)
    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, 8, 4, stride=4)

    def forward(self, pixel_values: object, grid_thw: object) -> object:
        return pixel_values


def test_packed_patches_follow_the_patch_embedding_and_the_documented_layout() -> None:
    config = _PackedConfig()  # 16 px, patches of 4, merged 2 x 2: 4 x 4 patches
    config.patch_size, config.in_channels, config.temporal_patch_size = 4, 3, 2  # type: ignore[attr-defined]
    config.num_channels = 3  # type: ignore[attr-defined]
    found = default_inputs(_LinearPatches(), config)
    # 16 patches of 3 x 2 x 4**2 = 96 values, as the expression documents
    assert found is not None and [(s.name, s.shape) for s in found] == [("pixel_values", (16, 96)), ("grid_thw", (1, 3))]
    found = default_inputs(_TokenPatches(), config)
    # 16 patches = 4 tokens of (4 x 2) x (4 x 2) x 3; the grid counted in tokens: 2 x 2
    assert found is not None and found[0].shape == (4, 8, 8, 3) and found[1].values == ((1, 2, 2),)
    found = default_inputs(_SquarePatches(), config)
    assert found is not None and found[0].shape == (16, 3, 4, 4) and found[1].values == ((1, 4, 4),)


class _MisdocumentedMels(nn.Module):  # Canary-like: the docs name a waveform, the model reads mel frames
    main_input_name = "input_features"

    def forward(self, input_features: object) -> object:
        """input_features (`torch.Tensor` of shape `(batch_size, audio_length)`):
        audio."""
        return input_features


class _StackedFrames(nn.Module):  # Granite-speech-like: the first layer reads 4 mel frames at a time
    main_input_name = "input_features"

    def __init__(self, subsampled: bool) -> None:
        super().__init__()
        self.input_linear = nn.Linear(4 * 8, 16)
        if subsampled:  # a 2-D convolution first (registered after the linear): frames stay frames
            self.subsampling = nn.Conv2d(1, 4, 3)

    def forward(self, input_features: object) -> object:
        return input_features


def test_mel_frames_are_read_as_the_first_layer_takes_them_and_a_doc_with_fewer_dimensions_is_ignored() -> None:
    config = _Config()
    config.num_mel_bins = 8  # type: ignore[attr-defined]
    found = default_inputs(_MisdocumentedMels(), config)
    assert found is not None and found[0].shape == (1, 3000, 8)  # conformer-like, not the documented 2-D
    found = default_inputs(_StackedFrames(subsampled=False), config)
    assert found is not None and found[0].shape == (1, 3000 // 4, 32)  # stacks of 4 frames of 8 bins
    found = default_inputs(_StackedFrames(subsampled=True), config)
    assert found is not None and found[0].shape == (1, 3000, 8)


class _NaViT(nn.Module):  # SigLIP2-like: flattened patches, which are valid, and their grid
    def __init__(self) -> None:
        super().__init__()
        self.patch_embedding = nn.Linear(3 * 4 * 4, 8)

    def forward(self, pixel_values: object, pixel_attention_mask: object, spatial_shapes: object) -> object:
        return pixel_values


def test_a_navit_tower_gets_flattened_patches_their_mask_and_their_grid() -> None:
    config = _Config()
    config.num_patches, config.patch_size = 16, 4  # type: ignore[attr-defined]
    found = default_inputs(_NaViT(), config)
    assert found is not None
    assert [(s.name, s.shape) for s in found] == [
        ("pixel_values", (1, 16, 48)), ("pixel_attention_mask", (1, 16)), ("spatial_shapes", (1, 2)),
    ]  # fmt: skip
    assert found[2].values == ((4, 4),) and found[1].tensor().sum() == 16  # a 4 x 4 grid, every patch valid
    assert found[1].text() == "pixel_attention_mask=1x16" and found[2].text() == "spatial_shapes=[[4,4]]"


class _Backbone:
    image_size = (64, 64)


class _Vision:
    backbone_config = _Backbone()


def test_an_image_size_named_by_the_vision_configs_backbone_is_used() -> None:
    # SAM2: no image_size in the config or its vision_config, only in the vision backbone's
    config = _Config()
    config.vision_config = _Vision()  # type: ignore[attr-defined]
    found = default_inputs(_Tower(), config)
    assert found is not None and found[0].shape == (1, 3, 64, 64)


class _Projected(nn.Module):  # Nemotron-like: a projection registered first, run after a subsampling
    main_input_name = "input_features"

    def __init__(self) -> None:
        super().__init__()
        self.projection = nn.Linear(4 * 8, 16)

    def forward(self, input_features: object) -> object:
        return input_features


class _TextAndUnknownAudio(nn.Module):  # Pop2Piano-like: ids and features, the features' layout unknown
    def forward(self, input_ids: object = None, input_features: object = None) -> object:
        return input_ids


def test_only_an_input_layer_reads_stacked_frames_and_a_medium_no_config_describes_is_left_out() -> None:
    config = _Config()
    config.num_mel_bins = 8  # type: ignore[attr-defined]
    found = default_inputs(_Projected(), config)
    assert found is not None and found[0].shape == (1, 3000, 8)
    text = _Config()
    text.vocab_size = 1000  # type: ignore[attr-defined]
    found = default_inputs(_TextAndUnknownAudio(), text)  # no audio config: the ids alone, not no input at all
    assert found is not None and [(s.name, s.shape) for s in found] == [(None, (1, 128))]
