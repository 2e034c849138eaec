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
