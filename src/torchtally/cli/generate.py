"""``torchtally MODEL --generate 512+128``: a language model's generation instead of one forward."""

from __future__ import annotations

import argparse

from ..estimate.apply import resolve as resolve_hardware
from ..generation import analyze_generation
from ..report.generation import GenerationReport
from ..errors import NeedsRealValues
from .errors import EXIT_ANALYSIS_FAILED, EXIT_OK, CLIError
from .modelcode import model_code
from .models import ModelOptions, build
from .output import choose_format, write

# Options that describe one forward pass (its inputs, a training step, its table) and mean
# nothing for a generation, which makes its own token inputs.
_SINGLE_PASS = {
    "input_size": "--input-size", "dtype": "--dtype", "training": "--training", "optimizer": "--optimizer",
    "columns": "--columns", "rows": "--rows", "max_params": "--max-params", "max_macs": "--max-macs",
    "max_flops": "--max-flops", "max_memory": "--max-memory",
}  # fmt: skip


def parse_lengths(text: str) -> tuple[int, int]:
    """``"512+128"`` -> (512, 128)."""
    prompt, plus, new = text.partition("+")
    try:
        lengths = int(prompt.replace("_", "")), int(new.replace("_", ""))
    except ValueError:
        lengths = (0, 0)
    if not plus or min(lengths) < 1:
        raise CLIError(f"--generate: expected PROMPT+NEW token counts, both at least 1 (512+128); got {text!r}")
    return lengths


def _check_options(options: argparse.Namespace) -> None:
    given = [flag for name, flag in _SINGLE_PASS.items() if getattr(options, name, None)]
    if given:
        raise CLIError(f"--generate makes its own token inputs and reports no layer table: drop {', '.join(given)}")


def generation_text(report: GenerationReport, fmt: str) -> str:
    if fmt == "json":
        return report.to_json() + "\n"
    if fmt == "csv":
        return report.to_csv()
    if fmt == "text":
        return report.table() + "\n"
    raise CLIError(f"--generate writes text, json or csv; not {fmt}")


def run_generation(options: argparse.Namespace, building: ModelOptions, settings: dict[str, object]) -> int:
    _check_options(options)
    prompt, new = parse_lengths(options.generate)
    if options.batch_size is not None and options.batch_size < 1:
        raise CLIError(f"--batch-size must be at least 1; got {options.batch_size}")
    fmt = choose_format(options.format, options.output)
    if fmt not in ("text", "json", "csv"):  # checked before the long run
        raise CLIError(f"--generate writes text, json or csv; not {fmt}")
    chip = None if options.hardware is None else resolve_hardware(options.hardware)  # a bad name fails first
    with model_code(options.model):
        built = build(options.model, building)
        try:
            report = analyze_generation(
                built.module, prompt, new, 1 if options.batch_size is None else options.batch_size, hardware=chip,
                cache=options.cache, parallel=settings.get("parallel"),  # type: ignore[arg-type]
            )
        except NeedsRealValues as limit:  # the engine's advice (run='auto') is the Python API's, and not for generation
            reason = str(limit).removesuffix("; use run='auto' or 'real'")
            raise CLIError(
                f"--generate runs prefill and decode on fake tensors only, and {reason}; analyse one forward "
                "without --generate instead", EXIT_ANALYSIS_FAILED,
            ) from limit
    write(generation_text(report, fmt), options.output)
    return EXIT_OK
