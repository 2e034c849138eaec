"""How the command line builds what MODEL names: what a model's construction says, and the
usual inputs of Hugging Face model types (audio, video, images, several inputs)."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest

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
    # a decision transformer's main input is `states`: the one-line error names it
    assert main(["hf:decision_transformer"]) != EXIT_OK
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--input-size states=" in err and "'states'" in err
