"""`torchtally MODEL --generate PROMPT+NEW`: the generation summary, JSON and CSV from the
command line, and the one-line errors of options that do not fit it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import jsonschema
import pytest

import torchtally as tt
from torchtally.cli import main
from torchtally.cli.errors import EXIT_OK, EXIT_USAGE

transformers = pytest.importorskip("transformers")

# A small Llama with grouped-query attention: 2 layers, 4 query heads of 16 sharing 2 key/value heads.
CONFIG = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2,
          "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128, "tie_word_embeddings": False}
KV_PER_TOKEN = 2 * 2 * 2 * 16 * 4  # keys and values x layers x kv heads x head dim x float32 bytes = 512


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("tiny-llama") / "config.json"
    path.write_text(json.dumps(CONFIG))
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_json_is_the_schema_s_and_counts_the_cache(capsys: pytest.CaptureFixture[str], config_file: str) -> None:
    code, out, err = run(capsys, config_file, "--generate", "6+3", "--batch-size", "2", "-f", "json")
    assert code == EXIT_OK, err
    data = json.loads(out)
    jsonschema.validate(data, tt.generation_schema())
    assert (data["prompt_tokens"], data["new_tokens"], data["batch_size"]) == (6, 3, 2)
    assert data["kv_cache_bytes_per_token"] == KV_PER_TOKEN
    assert data["kv_cache_bytes"] == KV_PER_TOKEN * (6 + 3) * 2
    assert [step["position"] for step in data["decode_steps"]] == [6, 7, 8]
    assert data["time_to_first_token"] is None and data["max_batch_size"] is None  # no --hardware


def test_generate_text_with_hardware_and_csv(capsys: pytest.CaptureFixture[str], config_file: str, tmp_path: Path) -> None:
    code, out, err = run(capsys, config_file, "--generate", "8+4", "--hardware", "l4")
    assert code == EXIT_OK, err
    assert out.startswith("Generation: LlamaForCausalLM, 8 prompt + 4 new tokens, batch 1, DynamicCache")
    assert "Estimated on l4" in out and "Time to first token:" in out and "Largest batch that fits" in out
    target = tmp_path / "steps.csv"
    code, out, err = run(capsys, config_file, "--generate", "8+4", "-o", str(target))
    assert code == EXIT_OK and out == "", err
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [int(row["kv_cache_bytes"]) for row in rows] == [KV_PER_TOKEN * (8 + i + 1) for i in range(4)]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--generate", "512"], "expected PROMPT+NEW"),
        (["--generate", "0+4"], "both at least 1"),
        (["--generate", "4+x"], "expected PROMPT+NEW"),
        (["--generate", "4+4", "--training"], "drop --training"),
        (["--generate", "4+4", "--input-size", "1", "8"], "drop --input-size"),
        (["--generate", "4+4", "-f", "html"], "text, json or csv"),
        (["--generate", "4+4", "--hardware", "h100-sxmm"], "h100-sxm"),
        (["--cache", "static"], "--cache applies to --generate"),
    ],
)
def test_options_that_do_not_fit_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], config_file: str, argv: list[str], says: str
) -> None:
    code, out, err = run(capsys, config_file, *argv)
    assert code == EXIT_USAGE and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("torchtally: error: ") and says in lines[0], err


def test_a_model_without_a_cache_is_told_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "resnet18", "--generate", "4+4")
    assert code == EXIT_USAGE and out == ""
    assert "ResNet.forward takes no cache" in err and len(err.strip().splitlines()) == 1
