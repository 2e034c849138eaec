"""The command line: ``torchtally MODEL [options]`` prints a model's summary,
``torchtally compare MODEL MODEL ...`` a comparison table. See ``torchtally --help``.

`main` returns the exit code (see `errors`) instead of exiting, so tests and other programs
can call it; the ``torchtally`` script and ``python -m torchtally`` exit with it."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from ..engine.parallel import Parallel
from ..errors import ForwardError, InputError, TorchtallyError
from ..compare import compare
from ..estimate import estimate_time
from ..estimate.apply import resolve as resolve_hardware
from ..report.model import ModelReport
from ..analysis import analyze
from ..report.settings import ViewOptions
from .budgets import Budget, excesses, parse_budgets
from .generate import run_generation
from .modelcode import model_code
from .errors import EXIT_ANALYSIS_FAILED, EXIT_BUDGET, EXIT_OK, EXIT_PIPE_CLOSED, EXIT_USAGE, CLIError, one_line
from .arguments import parse
from .inputs import InputShape, analyze_arguments, from_options, resolve
from .fallback import analyse_with_fallback
from .models import BuiltModel, ModelOptions, parse_device
from ..render.page import render_compare_page
from .output import choose_format, table_text, write, write_report
from .progress import Progress
from .values import parse_dtype, parse_pairs, split_names

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in arguments
    try:
        command, options = parse(arguments)
        return _compare(options) if command == "compare" else _summary(options)
    except SystemExit as done:  # --help and --version
        return done.code if isinstance(done.code, int) else EXIT_OK
    except KeyboardInterrupt:
        print("torchtally: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `torchtally compare ... | head`: the reader left, nothing to say
        _silence_stdout()
        return EXIT_PIPE_CLOSED
    except Exception as error:  # noqa: BLE001 - every error ends as one line and an exit code
        code, message = _classify(error)
        if debug:
            traceback.print_exc(file=sys.stderr)
        print(f"torchtally: error: {message}", file=sys.stderr)
        return code


def _silence_stdout() -> None:
    """Python flushes stdout at exit, which would raise (and print) again into a closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (captured in tests)
        pass


def _classify(error: Exception) -> tuple[int, str]:
    if isinstance(error, CLIError):
        return error.code, str(error)
    if isinstance(error, InputError):  # analyze() rejected what the options described
        return EXIT_USAGE, one_line(error).removeprefix("InputError: ")
    if isinstance(error, ForwardError):
        return EXIT_ANALYSIS_FAILED, f"analysis failed: {one_line(error).removeprefix('ForwardError: ')}"
    if isinstance(error, TorchtallyError):
        text = one_line(error).removeprefix(f"{type(error).__name__}: ")
        text = text.replace("; use run='auto' or 'real'", "; leave out --run fake")  # the API's words, in the CLI's
        if "meta device" in text:
            text += " (build it with real tensors: --device cpu)"
        return EXIT_ANALYSIS_FAILED, f"analysis failed: {text}"
    return EXIT_ANALYSIS_FAILED, f"unexpected {one_line(error)} (run with --debug for the traceback)"


def _model_options(options: argparse.Namespace) -> ModelOptions:
    return ModelOptions(
        args=parse_pairs(options.arg, "--arg"),
        overrides=parse_pairs(options.set, "--set"),
        hf_class=options.hf_class,
        device=parse_device(options.device),
        model_dtype=None if options.model_dtype is None else parse_dtype(options.model_dtype, "--model-dtype"),
        weights=options.weights,
        trust_pickle=options.trust_pickle,
        debug=options.debug,
    )


def _analysis(options: argparse.Namespace) -> dict[str, Any]:
    if options.run == "real" and options.device is None and options.generate is None:  # a meta build: nothing could run
        raise CLIError("--run real runs the model on real tensors: build it with some too (--device cpu)")
    training = options.training or options.optimizer is not None
    settings: dict[str, Any] = {"run": options.run, "training": training}
    if options.mode is not None:
        settings["mode"] = options.mode
    if options.optimizer is not None:
        settings["optimizer"] = options.optimizer
    layout = (options.fsdp, options.tp, options.dp)
    if layout != (1, 1, 1) or options.mixed_precision is not None or options.tp_plan:
        settings["parallel"] = Parallel(
            fsdp=options.fsdp, tp=options.tp, dp=options.dp, reshard_after_forward=options.reshard_after_forward,
            mixed_precision=options.mixed_precision,
            tp_plan=_tp_plan(options.tp_plan),
        )
    return settings


def _tp_plan(rules: list[str] | None) -> dict[str, str] | None:
    """``["blocks.*.up=colwise", ...]`` -> ``{"blocks.*.up": "colwise", ...}``."""
    if not rules:
        return None
    plan = {}
    for rule in rules:
        pattern, sep, style = rule.partition("=")
        if not sep or not pattern.strip() or not style.strip():
            raise CLIError(f"--tp-plan: expected PATTERN=STYLE (blocks.*.up=colwise), got {rule!r}")
        plan[pattern.strip()] = style.strip()
    return plan


def _budgets(options: argparse.Namespace) -> list[Budget]:
    return parse_budgets(options.max_params, options.max_macs, options.max_flops, options.max_memory)


def _analyse(spec: str, options: argparse.Namespace, building: ModelOptions, given: list[InputShape] | None) -> ModelReport:
    settings = _analysis(options)

    def analyse(built: BuiltModel, run: str | None) -> ModelReport:
        shapes = resolve(given, built.inputs, options.dtype, options.batch_size, spec, built.hint)
        return analyze(built.module, **analyze_arguments(shapes, built.module), **{**settings, "run": run or options.run})

    # A library model whose forward reads computed values is built again for real (fallback.py).
    allowed = options.device is None and options.run == "auto" and "parallel" not in settings
    copies = 1 + int(settings["training"]) + 2 * int(options.optimizer is not None)  # weights, gradients, two states
    with model_code(spec):
        return analyse_with_fallback(spec, building, analyse, _notice, allowed, copies)


def _notice(text: str) -> None:
    print(f"torchtally: note: {text}", file=sys.stderr)


def _summary(options: argparse.Namespace) -> int:
    if options.generate is not None:
        return run_generation(options, _model_options(options), _analysis(options))
    if options.cache is not None:
        raise CLIError("--cache applies to --generate")
    # Everything that can be wrong with the options fails here, before a long build and run.
    view = ViewOptions.parse(options.depth, split_names(options.columns), split_names(options.rows), options.style)
    budgets = _budgets(options)
    building = _model_options(options)
    given = from_options(options.input_size)
    fmt = choose_format(options.format, options.output)
    chip = None if options.hardware is None else resolve_hardware(options.hardware)  # a bad name fails first
    report = _analyse(options.model, options, building, given)
    if chip is not None:
        report = estimate_time(report, chip)
    over = excesses(report, budgets)
    try:
        write_report(report, fmt, view, options.output)
    except BrokenPipeError:  # `torchtally resnet18 | head`: the reader left; a budget still counts
        _silence_stdout()
        return EXIT_BUDGET if over else EXIT_PIPE_CLOSED
    if over:
        print(f"torchtally: budget exceeded: {'; '.join(over)}", file=sys.stderr)
        return EXIT_BUDGET
    return EXIT_OK


def _unique(names: list[str]) -> list[str]:
    """Row names for the table: a model named twice gets ``name (2)``."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


def _compare(options: argparse.Namespace) -> int:
    budgets = _budgets(options)
    building = _model_options(options)
    given = from_options(options.input_size)
    fmt = choose_format(options.format, options.output)
    chips = [resolve_hardware(name) for name in options.hardware or ()]  # a bad name fails first
    reports: dict[str, ModelReport] = {}
    failures: list[tuple[int, str]] = []
    names = _unique(list(options.models))
    with Progress(len(names), options.progress) as progress:
        for spec, name in zip(options.models, names):
            progress.start(name)
            try:
                reports[name] = _analyse(spec, options, building, given)
            except (CLIError, TorchtallyError) as error:  # the others still count: say which one failed
                code, message = _classify(error)
                failures.append((code, f"{spec}: {message}"))
            progress.done(name)
    if reports:
        rows = [(name, estimate_time(report, chip)) for name, report in reports.items() for chip in chips]
        if fmt == "html":  # a page: the comparison, then each model's own tree and charts
            labelled = [(f"{name} on {chip.name}", report) for (name, report), chip in zip(rows, [c for _ in reports for c in chips])]
            write(render_compare_page(labelled if chips else list(reports.items())), options.output)
        else:
            write(table_text(compare(rows if chips else reports), fmt), options.output)
    for _, message in failures:
        print(f"torchtally: error: {message}", file=sys.stderr)
    over = [f"{name}: {'; '.join(found)}" for name, report in reports.items() if (found := excesses(report, budgets))]
    for line in over:
        print(f"torchtally: budget exceeded: {line}", file=sys.stderr)
    if failures:  # a model that could not be analysed outranks a budget
        return max(code for code, _ in failures)
    return EXIT_BUDGET if over else EXIT_OK
