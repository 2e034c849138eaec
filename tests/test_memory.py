"""report.memory checked against byte counts derived by hand (the derivation is in the
comments), never copied from torchtally's output.

Where a derivation depends on what PyTorch really does (what autograd saves, when the
backward frees what, what torch.optim allocates), it is also checked against
`AllocationTracker`: a tiny dispatch mode of its own (independent of torchtally's code)
that follows storage lifetimes during a REAL run of the same model with real tensors.
The same numbers were confirmed with torch.profiler(profile_memory=True) on torch 2.14.1
(CPU): see the comments. float32 = 4 bytes, bfloat16 = 2 bytes per element throughout.
"""

from __future__ import annotations

import contextlib
import copy
import weakref
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import torchtally as tt
from helpers import Twice

# ---------------------------------------------------------------------------------------------
# An independent allocation tracker for real runs
# ---------------------------------------------------------------------------------------------


class AllocationTracker(TorchDispatchMode):
    """Bytes of the storages operators allocate during a real run, and the most alive at once.

    An operator's result whose storage (by data pointer) none of its tensor arguments had,
    and that is not followed already, is a new allocation of ``storage.nbytes()``; it is
    released when the storage object is finalised (the last tensor, view or autograd saved
    copy using it died). What a kernel allocates internally (workspaces) is not seen."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}  # data pointer -> bytes
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        owned = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for tensor in tree_leaves(out):
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            pointer, size = storage.data_ptr(), storage.nbytes()
            if size == 0 or pointer in owned or pointer in self.live:
                continue
            self.live[pointer] = size
            self.current += size
            self.peak = max(self.peak, self.current)
            weakref.finalize(storage, self._free, pointer)
        return out

    def _free(self, pointer: int) -> None:
        self.current -= self.live.pop(pointer, 0)

    def start_phase(self) -> None:
        self.peak = self.current


def real_training_trace(model: nn.Module, x: torch.Tensor, context: Callable[[], Any] | None = None) -> dict[str, int]:
    """Forward and backward of a deep copy of ``model`` on real tensors, the way torchtally
    describes its training run: the output is held, the backward starts from a gradient of
    ones (allocated, held by the caller during the backward, dropped after it)."""
    model = copy.deepcopy(model)
    tracker = AllocationTracker()
    with torch.enable_grad(), context() if context is not None else contextlib.nullcontext():
        with tracker:
            output = model(x)
            forward_peak, forward_end = tracker.peak, tracker.current
            tracker.start_phase()
            seed = torch.ones_like(output)
            output.backward(seed)
            del seed
            backward_peak, backward_end = tracker.peak, tracker.current
    return {
        "forward_peak": forward_peak,
        "forward_end": forward_end,
        "backward_peak": backward_peak,
        "backward_end": backward_end,
    }


# ---------------------------------------------------------------------------------------------
# The model most figures are derived for
# ---------------------------------------------------------------------------------------------

PARAMS = (100 * 200 + 200 * 300 + 300 * 50) * 4  # 95,000 weights = 380,000 B
INPUT = 8 * 100 * 4  # x: 8x100 = 3,200 B
Y1, Y2, Y3 = 8 * 200 * 4, 8 * 300 * 4, 8 * 50 * 4  # 6,400 / 9,600 / 1,600 B
G1, G2, G3 = 200 * 100 * 4, 300 * 200 * 4, 50 * 300 * 4  # weight gradients: 80,000 / 240,000 / 60,000 B
BASE = PARAMS + INPUT  # 383,200 B exist before the run


def chain(dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """100 -> 200 -> 300 -> 50, no biases (each layer is one mm on a transposed weight view)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(100, 200, bias=False), nn.Linear(200, 300, bias=False), nn.Linear(300, 50, bias=False)
    ).to(dtype)


# ---------------------------------------------------------------------------------------------
# 1. Inference
# ---------------------------------------------------------------------------------------------


def test_linear_chain_inference_memory() -> None:
    r = tt.analyze(chain(), (8, 100))
    m = r.memory
    assert m.parameters == PARAMS == 380_000
    assert m.buffers == 0
    assert m.inputs == INPUT == 3_200
    assert m.outputs == Y3 == 1_600
    # every leaf's output, per call: 6,400 + 9,600 + 1,600
    assert m.activations == Y1 + Y2 + Y3 == 17_600
    assert [r.layer(name).output_bytes for name in ("0", "1", "2")] == [Y1, Y2, Y3]
    # Under no_grad nothing is saved; Sequential rebinds `input`, so y1 dies once y2 exists:
    #   y1 alone: 6,400;  y1 (6,400) alive while y2 (9,600) is made: 16,000;
    #   y2 (9,600) alive while y3 (1,600) is made: 11,200.   Max = 16,000.
    assert m.forward_peak == m.peak == BASE + Y1 + Y2 == 399_200
    assert m.peak_phase == "forward"
    assert m.saved_for_backward is None and m.backward_peak is None and m.gradients is None
    assert m.optimizer_state is None and m.optimizer_step_peak is None


def test_linear_chain_inference_peak_matches_a_real_run() -> None:
    # The same live-set on real tensors with the independent tracker (torch.profiler on a real
    # run showed the allocations +6,400, +9,600, -6,400, +1,600, -9,600 too).
    model, x, tracker = chain(), torch.randn(8, 100), AllocationTracker()
    with torch.no_grad(), tracker:
        model(x)
    assert tracker.peak == Y1 + Y2 == 16_000


def test_bfloat16_chain_is_two_bytes_per_element() -> None:
    r = tt.analyze(chain(torch.bfloat16), (8, 100))
    m = r.memory
    assert r.inputs[0].dtype == "bfloat16"  # a float input takes the model's dtype
    assert m.parameters == 95_000 * 2 == 190_000
    assert m.inputs == 8 * 100 * 2 == 1_600
    assert m.outputs == 8 * 50 * 2 == 800
    assert m.activations == (8 * 200 + 8 * 300 + 8 * 50) * 2 == 8_800
    assert m.peak == 190_000 + 1_600 + (8 * 200 + 8 * 300) * 2 == 199_600


def test_batchnorm_buffers() -> None:
    model = nn.Sequential(nn.Linear(10, 20), nn.BatchNorm1d(20))
    r = tt.analyze(model, (4, 10))
    m = r.memory
    # Linear 10*20 + 20, BatchNorm weight + bias 2*20: 260 float32
    assert m.parameters == (10 * 20 + 20 + 2 * 20) * 4 == 1_040
    # running_mean, running_var: 20 float32 each; num_batches_tracked: one int64
    assert m.buffers == r.buffer_bytes == 20 * 4 + 20 * 4 + 8 == 168
    assert m.inputs == 4 * 10 * 4 == 160
    assert m.outputs == 4 * 20 * 4 == 320
    # eval: the linear's 4x20 output (320 B) is alive while batch norm makes its own (320 B);
    # the eval kernel's saved mean/invstd are empty.
    assert m.peak == 1_040 + 168 + 160 + 320 + 320 == 2_008


def test_autocast_region_is_respected() -> None:
    model = chain()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        r = tt.analyze(model, (8, 100))
    m = r.memory
    # linear runs in bfloat16 under CPU autocast: outputs are 2 bytes per element
    assert [r.layer(name).output_bytes for name in ("0", "1", "2")] == [8 * 200 * 2, 8 * 300 * 2, 8 * 50 * 2]
    assert r.layer("2").outputs[0][0].dtype == "bfloat16"
    assert m.outputs == 800
    assert m.activations == 3_200 + 4_800 + 800 == 8_800
    assert m.inputs == 3_200  # the input itself stays float32 (linear casts it)
    # Each linear casts its input and weight to bfloat16. Autocast caches the cast of a leaf
    # that requires grad (the weights, even under no_grad) until the autocast region ends;
    # the cast of x is a temporary. Live set:
    #   layer 0: W1 bf16 40,000 (cached) + x bf16 1,600 + y1 3,200              = 44,800
    #   layer 1: W1 40,000 + y1 3,200 + W2 bf16 120,000 + y2 4,800               = 168,000
    #   layer 2: W1 40,000 + W2 120,000 + y2 4,800 + W3 bf16 30,000 + y3 800     = 195,600
    # (torch.profiler on a real run under the same autocast shows these allocations, plus the
    # bf16 GEMM's internal workspaces, which are documented as not counted.)
    assert m.forward_peak == BASE + 195_600 == 578_800


def test_layer_called_twice_counts_both_outputs() -> None:
    r = tt.analyze(Twice(), (4, 16))
    lin = r.layer("lin")
    assert lin.calls == 2
    assert lin.output_bytes == 2 * 4 * 16 * 4 == 512  # two 4x16 float32 results
    assert r.memory.activations == 512
    assert r.memory.outputs == 256
    # the first result (256 B) is alive while the second (256 B) is made
    assert r.memory.peak == 16 * 16 * 4 + 4 * 16 * 4 + 256 + 256 == 1_792


class Transpose(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.t()


class Reshape(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(2, 2, 32)


def test_views_and_in_place_relu_allocate_nothing() -> None:
    # Linear makes 4x32 float32 = 512 B; view and in-place ReLU share its storage.
    model = nn.Sequential(nn.Linear(16, 32, bias=False), Reshape(), nn.ReLU(inplace=True))
    r = tt.analyze(model, (4, 16))
    base = 16 * 32 * 4 + 4 * 16 * 4  # weight 2,048 + input 256
    assert r.memory.peak == base + 512 == 2_816
    assert r.memory.outputs == 512
    # each row still returned a 512-byte tensor (activations sum output bytes by definition)
    assert [r.layer(name).output_bytes for name in ("0", "1", "2")] == [512, 512, 512]

    transposed = tt.analyze(nn.Sequential(nn.Linear(16, 32, bias=False), Transpose()), (4, 16))
    assert transposed.memory.peak == base + 512
    assert transposed.layer("1").output_shape == (32, 4)

    # contrast: an out-of-place ReLU allocates its own 512 B while the linear's is alive
    out_of_place = tt.analyze(nn.Sequential(nn.Linear(16, 32, bias=False), nn.ReLU()), (4, 16))
    assert out_of_place.memory.peak == base + 512 + 512 == 3_328


def test_outputs_include_a_returned_input() -> None:
    class Both(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(16, 16, bias=False)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x, self.lin(x)

    r = tt.analyze(Both(), (4, 16))
    assert r.layers[0].output_bytes == 2 * 4 * 16 * 4
    # "the tensors the model returned": x (256 B) and the linear's result (256 B)
    assert r.memory.outputs == 512


class AddTwo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(16, 16, bias=False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.lin(a) + b


def test_one_tensor_passed_twice_is_one_input() -> None:
    x = torch.randn(4, 16)
    m = tt.analyze(AddTwo(), input_data=(x, x)).memory
    assert m.inputs == 4 * 16 * 4  # one 4x16 float32 tensor exists: 256 B
    # weight 1,024 + x 256 + lin(x) 256 alive while the sum (256) is made
    assert m.peak == 1_024 + 256 + 256 + 256


# ---------------------------------------------------------------------------------------------
# 2. Training
# ---------------------------------------------------------------------------------------------
#
# What autograd keeps for y = x @ W.t() (mm(self=x, mat2=W.t())): `self` when mat2 needs a
# gradient (for grad_W = x.t() @ g), `mat2` (a view of the weight, no allocation) when self
# does. x does not require grad, so layer 0 saves x (an input, not allocated by the run);
# layer 1 saves y1, layer 2 saves y2; y3 is the output.
#
# Backward live set (bytes above BASE), the engine running MmBackward2, its weight's chain,
# MmBackward1, ..., freeing each node's saved tensors and incoming gradient after it runs;
# AccumulateGrad keeps the weight gradient mm produced (no copy):
#   start (forward end)              y1 6,400 + y2 9,600 + y3 1,600          = 17,600
#   + seed ones(8x50)                1,600                                    = 19,200
#   layer 2: + gW3 60,000 + g_y2 (8x300) 9,600                                 = 88,800
#            - y2 (saved, released)                                           = 79,200
#   layer 1: + gW2 240,000 + g_y1 (8x200) 6,400                                = 325,600
#            - y1 - g_y2                                                       = 309,600
#   layer 0: + gW1 80,000 (no grad for x: one mm)                              = 389,600  <- peak
#            - g_y1                                                            = 383,200
#   after backward the seed is dropped: gradients 380,000 + output y3 1,600   = 381,600
# torch.profiler on a real run shows exactly this sequence:
#   forward +6400 +9600 +1600; backward +1600 +60000 +9600 -9600 +240000 +6400 -9600 -6400 +80000 -6400.

FORWARD_END = Y1 + Y2 + Y3  # 17,600
# alive at the peak: output y3, seed (8x50), gW1, gW2, gW3, g_y1 (8x200, the size of y1)
BACKWARD_PEAK = Y3 + Y3 + G1 + G2 + G3 + Y1  # 389,600
BACKWARD_END = G1 + G2 + G3 + Y3  # 381,600


def test_linear_chain_training_memory() -> None:
    r = tt.analyze(chain(), (8, 100), training=True)
    m = r.memory
    assert r.training and r.optimizer is None
    assert (m.parameters, m.inputs, m.outputs, m.activations) == (PARAMS, INPUT, Y3, 17_600)
    assert m.saved_for_backward == Y1 + Y2 == 16_000  # y1 (for gW2) and y2 (for gW3)
    assert m.forward_peak == BASE + FORWARD_END == 400_800  # nothing dies in the forward
    assert m.gradients == PARAMS == 380_000
    assert BACKWARD_PEAK == 389_600
    assert m.backward_peak == BASE + BACKWARD_PEAK == 772_800
    assert m.optimizer_state is None and m.optimizer_step_peak is None
    assert (m.peak, m.peak_phase) == (772_800, "backward")


def test_linear_chain_training_matches_a_real_run() -> None:
    trace = real_training_trace(chain(), torch.randn(8, 100))
    assert trace == {
        "forward_peak": FORWARD_END,
        "forward_end": FORWARD_END,
        "backward_peak": BACKWARD_PEAK,
        "backward_end": BACKWARD_END,
    }


def test_linear_chain_training_real_run_mode() -> None:
    m = tt.analyze(chain(), (8, 100), training=True, run="real").memory
    assert (m.saved_for_backward, m.gradients, m.backward_peak) == (16_000, 380_000, BASE + BACKWARD_PEAK)


def test_frozen_layer_gets_no_gradient() -> None:
    model = chain()
    model[0].weight.requires_grad_(False)
    r = tt.analyze(model, (8, 100), training=True, optimizer="sgd-momentum")
    m = r.memory
    # y1 = x @ W1.t() needs no grad at all (no node); layer 1 saves y1 for gW2, layer 2 saves y2.
    assert m.saved_for_backward == Y1 + Y2
    assert m.gradients == G2 + G3 == 300_000
    # 17,600 + seed 1,600 + gW3 60,000 + g_y2 9,600 = 88,800; - y2 = 79,200;
    # layer 1: + gW2 240,000 (no grad for y1) = 319,200 <- peak; - y1 - g_y2 = 303,200.
    assert m.backward_peak == BASE + 319_200 == 702_400
    assert real_training_trace(model, torch.randn(8, 100))["backward_peak"] == 319_200
    # momentum buffers exist only for parameters that had a gradient
    assert m.optimizer_state == 300_000


# Optimizer state and the steady-state step, from torch.optim's single-tensor (CPU) loops.
# Parameters in order W1 (80,000 B), W2 (240,000 B), W3 (60,000 B).
#   sgd:           param.add_(grad): in place, no state.                      step: 0
#   sgd-momentum:  buf (1x params) updated in place; param.add_(buf).          step: 0
#   sgd-nesterov:  grad = grad.add(buf): one param-sized temporary per param,
#                  dropped when `grad` is rebound for the next one.            step: 240,000 (W2)
#   adam / adamw:  exp_avg, exp_avg_sq (2x params) + a float32 scalar step per param (3 x 4 B);
#                  denom = (exp_avg_sq.sqrt() / c).add_(eps): sqrt's temporary and the
#                  quotient live at once, and the previous param's denom is still bound
#                  until the assignment: max over i of size[i-1] + 2 size[i]
#                  = 80,000 + 2 x 240,000 = 560,000 (at W2).
#   adam-amsgrad:  + max_exp_avg_sq (3x params); torch.maximum(..., out=) in place. step: 560,000
# (Confirmed on real tensors: the second step of each real torch.optim optimizer, measured
# with torch.profiler, allocates 0 / 0 / 240,000 / 560,000 / 560,000 / 560,000 bytes over its
# state, plus 12 bytes of scalar temporaries the dispatcher does not show.)
# optimizer_step_peak = BASE + alive after backward (381,600) + state + step temporaries.
# peak = max(forward 400,800 + state, backward 772,800 + state, optimizer_step_peak).
OPTIMIZER_CASES = {
    # name: (state, step temporaries, expected phase)
    "sgd": (0, 0, "backward"),
    "sgd-momentum": (PARAMS, 0, "backward"),
    "sgd-nesterov": (PARAMS, G2, "optimizer step"),
    "adam": (2 * PARAMS + 3 * 4, G1 + 2 * G2, "optimizer step"),
    "adamw": (2 * PARAMS + 3 * 4, G1 + 2 * G2, "optimizer step"),
    "adam-amsgrad": (3 * PARAMS + 3 * 4, G1 + 2 * G2, "optimizer step"),
}


@pytest.mark.parametrize("name", list(OPTIMIZER_CASES))
def test_optimizer_state_and_step_peak(name: str) -> None:
    state, temporaries, phase = OPTIMIZER_CASES[name]
    m = tt.analyze(chain(), (8, 100), training=True, optimizer=name).memory
    assert m.optimizer_state == state
    step_peak = BASE + BACKWARD_END + state + temporaries
    assert m.optimizer_step_peak == step_peak
    expected = max(BASE + FORWARD_END + state, BASE + BACKWARD_PEAK + state, step_peak)
    assert m.peak == expected
    assert m.peak_phase == phase


def test_adam_step_temporaries_match_real_torch_optim() -> None:
    # The 560,000 bytes above, measured by the independent tracker on a real second Adam step.
    params = [nn.Parameter(torch.randn(shape)) for shape in ((200, 100), (300, 200), (50, 300))]
    for param in params:
        param.grad = torch.randn_like(param)
    optimizer = torch.optim.Adam(params)
    optimizer.step()  # creates the state
    tracker = AllocationTracker()
    with tracker:
        optimizer.step()
    assert tracker.peak == G1 + 2 * G2 == 560_000
    assert tracker.current == 0


def test_bfloat16_training_with_adam() -> None:
    m = tt.analyze(chain(torch.bfloat16), (8, 100), training=True, optimizer="adam").memory
    assert m.saved_for_backward == (8 * 200 + 8 * 300) * 2 == 8_000
    assert m.gradients == 190_000
    # every tensor halves: 389,600 / 2
    assert m.backward_peak == 190_000 + 1_600 + 194_800
    # exp_avg + exp_avg_sq in bfloat16, the step counters stay float32 scalars
    assert m.optimizer_state == 2 * 190_000 + 3 * 4 == 380_012


def test_autocast_training_memory() -> None:
    model = chain()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        m = tt.analyze(model, (8, 100), training=True).memory
    # Forward: cached bf16 weights W1 40,000 + W2 120,000 + W3 30,000 (also saved for the
    # input gradients), x bf16 1,600 (saved for gW1), y1 3,200, y2 4,800 (saved), y3 800.
    forward_end = 190_000 + 1_600 + 3_200 + 4_800 + 800
    assert forward_end == 200_400
    assert m.forward_peak == BASE + forward_end
    assert m.saved_for_backward == forward_end - 800
    assert m.gradients == PARAMS  # float32 gradients for the float32 parameters
    # Backward (bytes alive), each weight gradient made in bfloat16 and cast to float32 by
    # ToCopyBackward (the engine runs a weight's chain before the next mm: later nodes first):
    #   200,400 + seed 800 + gW3 bf16 30,000 + g_y2 4,800 - y2 4,800 + gW3 f32 60,000 - 30,000
    #     = 261,200
    #   + gW2 bf16 120,000 + g_y1 3,200 - y1 3,200 - g_y2 4,800 = 376,400
    #   + gW2 f32 240,000 = 616,400 <- peak (then - 120,000, and layer 0 stays below it)
    assert m.backward_peak == BASE + 616_400
    trace = real_training_trace(model, torch.randn(8, 100), lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    assert (trace["forward_end"], trace["backward_peak"]) == (200_400, 616_400)


def test_layer_called_twice_training_memory() -> None:
    m = tt.analyze(Twice(), (4, 16), training=True).memory
    # forward: h = x W^T (256 B, saved by the second call for its weight gradient), y (256 B)
    assert m.saved_for_backward == 256
    # backward: 512 + seed 256 = 768
    #   second call's mm: + its weight-gradient term 1,024 + grad_h 256 = 2,048; - h = 1,792
    #   first call's mm (x needs no grad): + its weight-gradient term 1,024 = 2,816; - grad_h = 2,560
    #   the two terms meet in the weight's input buffer: both are transposed views, so they are
    #   added out of place: + 1,024 = 3,584 <- peak; then the two terms die.
    assert m.backward_peak == 1_024 + 256 + 3_584
    assert m.gradients == 1_024
    assert real_training_trace(Twice(), torch.randn(4, 16))["backward_peak"] == 3_584


def test_an_exception_the_model_handles_does_not_keep_its_tensors_alive() -> None:
    class Risky(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = x.exp()  # 4 MiB, referenced only by this frame
            raise ValueError(f"take the other path, not {tuple(y.shape)}")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.risky = Risky()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            try:
                return self.risky(x)
            except ValueError:
                pass  # handled: the exception and Risky's frame (with y) are gone
            return x * 2

    # input 1024x1024 float32 = 4 MiB; y = 4 MiB, freed before x * 2 (4 MiB) is made
    assert tt.analyze(Net(), (1024, 1024)).memory.peak == 4 * 2**20 + 4 * 2**20


def test_adagrad_state_made_in_its_constructor_is_in_the_step_peak() -> None:
    # Adagrad creates its state (`sum`, a float32 `step`) in __init__, not in its first step.
    m = tt.analyze(nn.Linear(1024, 1024, bias=False), (1, 1024), training=True, optimizer="adagrad").memory
    mib4 = 1024 * 1024 * 4
    # step: weight + its gradient + state `sum` + the temporary std = sum.sqrt().add_(eps), 4 MiB each;
    # input and output (still held) 4 KiB each; the step counter 4 B
    assert m.optimizer_state == mib4 + 4
    assert m.optimizer_step_peak == m.peak == 4 * mib4 + 2 * 4096 + 4
    assert m.peak_phase == "optimizer step"
