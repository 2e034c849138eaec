"""The estimated peak memory (``report.memory.peak``) against a measurement of the same work.

    .venv/bin/python benchmarks/memory_estimate.py [--only SUBSTRING]

For each model, batch size and phase, ``tt.analyze`` gives its estimate (fake tensors, no
allocation), and a real run of the same work on a fresh deep copy of the model is measured
independently of torchtally:

* inference: one forward in eval mode under ``no_grad`` (after one unmeasured warm-up forward);
* training: train mode, a steady-state step. One unmeasured warm-up step creates Adam's
  state; then ``zero_grad(set_to_none=True)``, and the measured window holds the forward, a
  backward from ``ones_like`` of every floating output that requires grad (what the
  estimate assumes without a loss), and one ``torch.optim.Adam`` step, the output still held.

On the CPU the measurement is ``torch.profiler`` with ``profile_memory=True``: every allocation
and free through PyTorch's CPU allocator is one ``[memory]`` event with a signed byte count;
sorted by time, the largest running sum is the most allocated at once inside the window. What
existed before the window (parameters, buffers, inputs and, for training, the optimizer's
state) is added, counted from the tensors themselves. Frees of blocks allocated before the
window are not reported by the profiler, which is why gradients are dropped before it.

With CUDA, GPU rows add the real run on the device (``reset_peak_memory_stats`` then
``max_memory_allocated``, which counts everything resident on the device, the model
included) and the ``measured_peak`` of ``tt.analyze(..., run="real")``; without CUDA they are
skipped. ``tt real`` is the estimate from ``run="real"`` (the same live-set method on real
kernels): where it differs from the fake run, a fake (meta) kernel misstates an output.
Under a minute on a 2-core CPU."""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torchvision
from torch import nn
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils.checkpoint import checkpoint

import torchtally as tt

MiB = 2**20
PHASES = ("forward", "backward", "optimizer step")  # as Memory.peak_phase names them
HOST_DEVICES = (DeviceType.CPU, DeviceType.MKLDNN, DeviceType.IDEEP)  # the profiler's own "CPU memory"


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], nn.Module]
    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    high: int = 0  # token ids: inputs are randint(0, high)
    phases: tuple[bool, ...] = (False, True)  # training=False, True


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Linear(1024, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.GELU(), nn.Linear(4096, 1024), nn.ReLU(),
        nn.Linear(1024, 10),
    )


def transformer_encoder() -> nn.Module:
    layer = nn.TransformerEncoderLayer(d_model=256, nhead=8, dim_feedforward=1024, batch_first=True)
    return nn.TransformerEncoder(layer, num_layers=4, enable_nested_tensor=False)


def tiny_gpt2() -> nn.Module:
    import transformers

    config = transformers.GPT2Config(
        n_layer=4, n_embd=256, n_head=4, n_positions=256, vocab_size=8192, bos_token_id=0, eos_token_id=0,
        use_cache=False,
    )
    return transformers.GPT2LMHeadModel(config)


def lstm() -> nn.Module:
    return nn.LSTM(256, 512, num_layers=2, batch_first=True)


class Checkpointed(nn.Module):
    """Residual MLP blocks under non-reentrant activation checkpointing (training only)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(512, 2048), nn.GELU(), nn.Linear(2048, 512)) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + checkpoint(block, x, use_reentrant=False)
        return x


def vision(name: str) -> Callable[[], nn.Module]:
    return lambda: torchvision.models.get_model(name)


CASES = [
    Case("mlp 1024-4096-4096-1024-10", mlp, (256, 1024)),
    Case("resnet18", vision("resnet18"), (1, 3, 224, 224)),
    Case("resnet18", vision("resnet18"), (8, 3, 224, 224)),
    Case("mobilenet_v2", vision("mobilenet_v2"), (1, 3, 224, 224)),
    Case("mobilenet_v2", vision("mobilenet_v2"), (8, 3, 224, 224)),
    Case("TransformerEncoder 4x256d", transformer_encoder, (8, 128, 256)),
    Case("gpt2 4x256d, vocab 8192", tiny_gpt2, (8, 128), torch.long, high=8192),
    Case("LSTM 2x512", lstm, (8, 64, 256)),
    Case("mlp 4 blocks, checkpointed", Checkpointed, (256, 512), phases=(True,)),
]


# --- measuring, independently of torchtally ---------------------------------------------


def tensors_in(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, Mapping):  # Hugging Face ModelOutput is an OrderedDict
        for item in value.values():
            yield from tensors_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from tensors_in(item)


def storage_bytes(tensors: Iterator[torch.Tensor] | list[torch.Tensor]) -> int:
    seen: dict[int, int] = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def resident(model: nn.Module, inputs: torch.Tensor, optimizer: torch.optim.Optimizer | None) -> int:
    """Bytes that exist before the measured window."""
    tensors = [*model.parameters(), *model.buffers(), inputs]
    if optimizer is not None:
        tensors += [v for state in optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor)]
    return storage_bytes(tensors)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """The profiler's C++ side writes start/stop lines (and a warning for every block freed
    that it did not see allocated) straight to file descriptor 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def profiled_peak(fn: Callable[[], None]) -> tuple[int, str]:
    """The most bytes allocated at once through the CPU allocator while ``fn`` runs, net of
    what it freed, from the profiler's allocation events in time order; and the phase
    (a ``record_function`` range named in PHASES) it was reached in."""
    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = prof.profiler.kineto_results.events()
    memory = sorted((e for e in events if e.name() == "[memory]"), key=lambda e: e.start_ns())
    running = peak = 0
    when = None
    for event in memory:
        if event.device_type() in HOST_DEVICES:
            running += event.nbytes()
            if running > peak:
                peak, when = running, event.start_ns()
    phase = next(
        (e.name() for e in events if e.name() in PHASES and when is not None and e.start_ns() <= when <= e.end_ns()), ""
    )
    return peak, phase


def check_profiled_peak() -> None:
    """The reconstruction on a known case: 1 MB, then 2 MB, free 1 MB, 0.5 MB: peak 3 MB."""

    def work() -> None:
        a = torch.empty(1_000_000, dtype=torch.uint8)
        b = torch.empty(2_000_000, dtype=torch.uint8)
        del a
        c = torch.empty(500_000, dtype=torch.uint8)
        del b, c

    peak, _ = profiled_peak(work)
    assert peak == 3_000_000, f"profiler reconstruction is off: {peak} bytes for a 3,000,000-byte peak"


def make_input(case: Case, device: torch.device | str = "cpu") -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    if case.high:
        return torch.randint(0, case.high, case.shape, generator=generator).to(device)
    return torch.randn(case.shape, generator=generator, dtype=case.dtype).to(device)


def backward_from_ones(output: Any) -> None:
    targets = [t for t in tensors_in(output) if t.requires_grad and t.is_floating_point()]
    seeds = [torch.ones_like(t) for t in targets]
    torch.autograd.backward(targets, seeds)


def inference_step(model: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        model(x)


def training_step(model: nn.Module, x: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    with record_function("forward"):
        output = model(x)
    with record_function("backward"):
        backward_from_ones(output)
    with record_function("optimizer step"):
        optimizer.step()  # the output is still held, as in a loop that logs it after the step
    del output


def measure_cpu(case: Case, model: nn.Module, training: bool) -> tuple[int, str]:
    """Peak bytes (absolute) of the step on a fresh copy, and the phase it was reached in."""
    model = copy.deepcopy(model).train(training)
    x = make_input(case)
    if not training:
        inference_step(model, x)  # warm-up: one-time caches and lazy initialisation
        gc.collect()
        peak, _ = profiled_peak(lambda: inference_step(model, x))
        return resident(model, x, None) + peak, ""
    optimizer = torch.optim.Adam(model.parameters())
    training_step(model, x, optimizer)  # warm-up: creates the optimizer's state
    optimizer.zero_grad(set_to_none=True)
    gc.collect()
    peak, phase = profiled_peak(lambda: training_step(model, x, optimizer))
    return resident(model, x, optimizer) + peak, phase


def measure_cuda(case: Case, model: nn.Module, training: bool) -> tuple[int, str]:
    """max_memory_allocated over the same step on the GPU (absolute: the model is included)."""
    model = copy.deepcopy(model).cuda().train(training)
    x = make_input(case, "cuda")
    optimizer = torch.optim.Adam(model.parameters()) if training else None
    for measured in (False, True):
        if measured:
            torch.cuda.synchronize()
            gc.collect()
            torch.cuda.reset_peak_memory_stats()
        if optimizer is None:
            inference_step(model, x)
        else:
            training_step(model, x, optimizer)
            optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    return int(torch.cuda.max_memory_allocated()), ""


def estimate(case: Case, model: nn.Module, training: bool, **options: Any) -> tt.ModelReport:
    dtypes = [case.dtype]
    if training:
        return tt.analyze(model, case.shape, dtypes=dtypes, training=True, optimizer="adam", **options)
    return tt.analyze(model, case.shape, dtypes=dtypes, **options)


# --- the table --------------------------------------------------------------------------


def row(
    case: Case, phase: str, device: str, fake: tt.ModelReport, real: tt.ModelReport, measurement: tuple[int, str]
) -> str:
    peak = fake.memory.peak
    measured, measured_phase = measurement
    ratio = peak / measured
    flag = "" if 0.9 <= ratio <= 1.1 else "  <--"
    peak_phase = f"{fake.memory.peak_phase} / {measured_phase or '?'}" if fake.training else ""
    extra = ""
    if real.memory.measured_peak is not None:
        extra = f"  tt run='real' measured_peak {real.memory.measured_peak / MiB:.1f} MiB"
    return (
        f"{case.name:27s} {case.shape[0]:>5d} {phase:9s} {device:4s} {peak / MiB:9.1f} {real.memory.peak / MiB:9.1f} "
        f"{measured / MiB:9.1f} {ratio:6.2f}  {peak_phase:31s}{flag}{extra}"
    ).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run only the models whose name contains this")
    args = parser.parse_args()
    check_profiled_peak()
    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CUDA: {'yes' if cuda else 'no (GPU rows skipped)'}")
    print("estimate: tt.analyze(...).memory.peak (fake run); tt real: the same from run='real';")
    print("measured: resident before the window + profiled peak (CPU), max_memory_allocated (CUDA); ratio: estimate/measured")
    header = (
        f"{'model':27s} {'batch':>5s} {'phase':9s} {'dev':4s} {'estimate':>9s} {'tt real':>9s} {'measured':>9s} "
        f"{'ratio':>6s}  {'peak phase (est. / measured)'}"
    )
    print(f"{'':47s}{'MiB':>9s} {'MiB':>9s} {'MiB':>9s}")
    print(header)
    print("-" * len(header))
    start = time.perf_counter()
    for case in CASES:
        if args.only and args.only not in case.name:
            continue
        torch.manual_seed(0)
        model = case.build()
        for training in case.phases:
            phase = "training" if training else "inference"
            fake, real = estimate(case, model, training), estimate(case, model, training, run="real")
            print(row(case, phase, "cpu", fake, real, measure_cpu(case, model, training)), flush=True)
            if cuda:
                measured = measure_cuda(case, model, training)  # alone on the device
                gpu_model = copy.deepcopy(model).cuda()
                fake = estimate(case, gpu_model, training)
                torch.cuda.reset_peak_memory_stats()  # so that the real analysis sets a new high-water mark
                real = estimate(case, gpu_model, training, run="real")
                print(row(case, phase, "cuda", fake, real, measured), flush=True)
                del gpu_model
                torch.cuda.empty_cache()
    print(f"({time.perf_counter() - start:.0f} s)")
    print(NOTES)


NOTES = """
What each side includes:
* Both: parameters, buffers and the input; in training, Adam's state (exp_avg, exp_avg_sq and
  a 4-byte step per parameter) alive throughout, gradients from the backward through the
  step, the output held through the step, and a ones_like seed per output during backward
  (the estimate's backward seed without loss_fn; a real loss adds its own small tensors).
* estimate: the storages operators return, alive as long as Python or autograd holds them
  (views and in-place results are free), followed on fake tensors. It cannot see what a
  kernel allocates inside itself and frees before returning: oneDNN's reordered copies of
  weights or inputs, scratch space, the intermediates of fused kernels.
* measured (CPU): every block through PyTorch's CPU allocator in the window, kernels'
  temporaries included (oneDNN allocates through it). Sizes are the requested bytes (no
  64-byte alignment, no malloc overhead); what libraries take from malloc directly (OpenMP,
  MKL internals) is not seen; Python scalars wrapped into tensors count (a few bytes).
  Adam runs single-tensor, PyTorch's CPU default, as the estimate assumes off CUDA.
* measured (CUDA): max_memory_allocated, in the caching allocator's 512-byte blocks, kernels'
  workspaces included (cuBLAS, cuDNN); Adam runs foreach there, as in the estimate. tt's own
  run='real' measured_peak covers its forward and backward only (its optimizer step is
  simulated on fake tensors: no Adam state on the device).

The deviations here (found with the profiler's allocation tree: which op allocated what was
alive at the measured peak):
* resnet18 b1, mobilenet_v2 inference: mkldnn_convolution's internal copies, a blocked reorder
  of a 512x512x3x3 weight (9 MiB) in resnet18, of a depthwise conv's input in mobilenet_v2.
* TransformerEncoder inference: eval + no_grad takes the fused fast path, one
  aten._transformer_encoder_layer_fwd per layer; its q/k/v and attention scores are internal.
* LSTM: mkldnn_rnn_layer's internal weight reorders and workspace; in training also its
  saved workspace output (16 MiB a layer here), which PyTorch's meta kernel returns empty, so
  the fake estimate is below its own run='real' figure.
* checkpointed MLP: non-reentrant checkpointing stops each recomputation by raising an
  exception through the block's forward; the estimate must let the recomputed activations die
  with it (an earlier version kept the exception, and them, alive: 1.13).
"""


if __name__ == "__main__":
    main()
