"""The command line's grammar (argparse): ``torchtally MODEL [options]`` and
``torchtally compare MODEL MODEL ... [options]``. Options mirror `tt.analyze`'s arguments."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

import torch

from .._version import __version__
from .errors import CLIError
from .output import FORMATS

MODEL_HELP = """\
MODEL is one of:
  resnet18, torchvision:vit_b_16   a torchvision model (built without weights)
  timm:convnext_tiny               a timm model (when timm is installed)
  hf:llama --set hidden_size=4096  a Hugging Face architecture from its model type and overrides,
  hf:path/to/config.json           or from a local config.json (or the folder holding it)
  path/to/file.py:Net              your code: a class or a function returning an nn.Module,
  package.module:make_model        called with the --arg values
  model.pt                         a pickled whole model (only with --trust-pickle)
  model.pt2                        a saved torch.export program, its example inputs by default (--trust-pickle)
Models are built on the meta device (no memory, no weights, nothing downloaded) unless
--device asks for real tensors; a library model whose forward reads values its own layers
compute is built again on the CPU (seeded random weights) and run for real.

exit codes: 0 ok, 1 the analysis failed, 2 bad invocation (unknown model, bad input,
file problems), 3 a --max-* budget was exceeded (the report is still written)."""


class Parser(argparse.ArgumentParser):
    """Errors as one line (``torchtally: error: ...``, exit 2), not usage plus message."""

    given: Sequence[str] = ()

    def error(self, message: str) -> NoReturn:
        if "MODEL" in message and "required" in message and "--input-size" in self.given:
            # `--input-size 1 3 224 224 resnet18`: the shape's values took the model's name too
            message += "; put MODEL first (torchtally MODEL --input-size 1 3 224 224)"
        raise CLIError(f"{message} (see {self.prog} --help)")


def _model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("building the model")
    group.add_argument("--arg", action="append", metavar="KEY=VALUE",
                       help="keyword for the model's constructor or factory (repeatable): --arg num_classes=10")
    group.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="Hugging Face config field (repeatable): --set num_hidden_layers=32")
    group.add_argument("--hf-class", metavar="NAME",
                       help="transformers class to build (default: AutoModelForCausalLM, else AutoModel)")
    group.add_argument("--device", metavar="DEVICE",
                       help="build the model with real tensors on this device (cpu, cuda); default: meta")
    group.add_argument("--model-dtype", metavar="DTYPE", help="cast the model's floating parameters (bf16, float16, ...)")
    group.add_argument("--weights", metavar="FILE",
                       help="load a state dict (weights_only=True, or .safetensors) into the model; needs --device")
    group.add_argument("--trust-pickle", action="store_true",
                       help="allow MODEL to be a pickled model file: unpickling runs code from the file")


def _input_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("inputs (default: the model's usual input, batch 1)")
    group.add_argument("--input-size", action="append", nargs="+", metavar="DIM",
                       help="one input's full shape, batch included: 1 3 224 224 or 1x3x224x224; "
                            "NAME=1 128 for a keyword input; NAME=[[1,32,32]] for int64 values the "
                            "forward reads; repeat for several inputs")
    group.add_argument("--dtype", action="append", metavar="DTYPE",
                       help="input dtype (float16, bf16, long, ...): once for all inputs or once per input")
    group.add_argument("--batch-size", type=int, metavar="N", help="replace the first dimension of every input")


def _analysis_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("analysis")
    group.add_argument("--training", action="store_true", help="also analyse the backward pass (and an optimizer step)")
    group.add_argument("--optimizer", metavar="NAME", help="optimizer of the training step (sgd, adam, adamw, ...); implies --training")
    group.add_argument("--mode", choices=("eval", "train", "same"), help="module mode during the run (default: eval; train with --training)")
    group.add_argument("--run", choices=("auto", "fake", "real"), default="auto",
                       help="fake tensors, real ones, or fake with a real fallback (default: auto)")
    layout = parser.add_argument_group("parallel layout (one rank of it, simulated on this CPU)")
    layout.add_argument("--fsdp", type=int, default=1, metavar="N", help="shard the parameters over N ranks (FSDP2)")
    layout.add_argument("--tp", type=int, default=1, metavar="N",
                        help="tensor parallel over N ranks (the Hugging Face model's own plan, or --tp-plan)")
    layout.add_argument("--dp", type=int, default=1, metavar="N",
                        help="N data-parallel replicas (with --fsdp: hybrid sharding)")
    layout.add_argument("--tp-plan", action="append", metavar="PATTERN=STYLE",
                        help="a tensor-parallel rule: blocks.*.up=colwise (colwise, rowwise, colwise_gather_output, "
                             "embedding_rowwise, sequence_parallel); repeat for several")
    layout.add_argument("--mixed-precision", choices=("bf16", "fp16"), help="FSDP gathers parameters in this dtype")
    layout.add_argument("--reshard-after-forward", action=argparse.BooleanOptionalAction, default=True,
                        help="FSDP frees each block's gathered parameters after its forward (default: yes)")


def _output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument("--format", "-f", choices=FORMATS,
                       help="output format (default: from the --output suffix, else text)")
    group.add_argument("--output", "-o", metavar="FILE", help="write the result to FILE instead of stdout ('-': stdout)")


def _budget_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("budgets (exit code 3 when exceeded)")
    group.add_argument("--max-params", metavar="N", help="most parameters allowed: 25M, 1.5e9, 7B")
    group.add_argument("--max-macs", metavar="N", help="most forward MACs allowed: 4G")
    group.add_argument("--max-flops", metavar="N", help="most forward FLOPs allowed: 8G")
    group.add_argument("--max-memory", metavar="BYTES", help="largest peak memory allowed: 512MiB, 8GiB, 2GB, 1000000")


def _common(parser: argparse.ArgumentParser) -> None:
    _model_options(parser)
    _input_options(parser)
    _analysis_options(parser)
    _output_options(parser)
    _budget_options(parser)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser.add_argument("--version", action="version", version=f"torchtally {__version__} (torch {torch.__version__})")


def summary_parser() -> Parser:
    parser = Parser(
        prog="torchtally",
        usage="torchtally MODEL [options]\n       torchtally compare MODEL MODEL ... [options]",
        description="Show what a PyTorch model is made of: per-layer shapes, parameters, MACs, FLOPs and memory.",
        epilog=MODEL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("model", metavar="MODEL", help="the model to analyse (forms below)")
    _common(parser)
    view = parser.add_argument_group("table (text, markdown and html)")
    view.add_argument("--depth", type=int, default=3, metavar="N", help="fold modules deeper than N (default: 3)")
    view.add_argument("--columns", action="append", metavar="NAMES",
                      help="comma-separated columns: input_shape, output_shape, kernel_size, params, macs, flops, ...")
    view.add_argument("--rows", action="append", metavar="NAMES",
                      help="comma-separated row settings: type_names, ascii_only, hide_empty, collapse_repeats")
    view.add_argument("--style", choices=("tree", "flat"), default="tree", help="table style (default: tree)")
    parser.add_argument("--hardware", metavar="NAME",
                        help="also estimate the time on a chip: h100-sxm, a100-sxm-80gb, l4, ... or local (this "
                             "machine, calibrated); adds Est. time and Bound columns")
    generation = parser.add_argument_group("generation (language models)")
    generation.add_argument("--generate", metavar="PROMPT+NEW",
                            help="analyse generation instead of one forward: the prompt pass and each decode step, "
                                 "the KV cache, time per token with --hardware, the largest batch that fits; "
                                 "512+128 is a 512-token prompt and 128 new tokens (batch: --batch-size)")
    generation.add_argument("--cache", choices=("dynamic", "static"),
                            help="with --generate: the Hugging Face cache to use (default: the model's own)")
    return parser


def compare_parser() -> Parser:
    parser = Parser(
        prog="torchtally compare",
        usage="torchtally compare MODEL MODEL ... [options]",
        description="Compare models side by side: parameters, MACs, FLOPs, parameter bytes and peak memory. "
                    "Every option applies to every model.",
        epilog=MODEL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("models", metavar="MODEL", nargs="+", help="the models to compare (forms below)")
    _common(parser)
    parser.add_argument("--hardware", nargs="+", metavar="NAME",
                        help="also estimate each model's time on these chips (one row per model and chip): "
                             "--hardware a100-sxm-80gb h100-sxm l4")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress on stderr (default: a progress bar when stderr is a terminal)")
    return parser


def parse(argv: Sequence[str]) -> tuple[str, argparse.Namespace]:
    """("summary" or "compare", the options)."""
    command = "compare" if argv and argv[0] == "compare" else "summary"
    parser = compare_parser() if command == "compare" else summary_parser()
    parser.given = list(argv)
    options = parser.parse_args(argv[1:] if command == "compare" else argv)
    if options.output == "-":  # the usual name for stdout
        options.output = None
    return command, options
