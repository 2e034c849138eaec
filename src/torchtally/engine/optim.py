"""The optimizer's share of a training step: its state, its arithmetic and the memory its
step needs, from running PyTorch's own optimizer once on fake copies of the parameters
and gradients (so nothing real is computed, allocated or written)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Union

import torch
from torch._ops import OpOverload
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._mode_utils import no_dispatch
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes

from ..errors import InputError
from ..formulas.resolve import CostModel
from .memory import LiveSet, StepCost

OptimizerFactory = Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]
OptimizerSpec = Union[str, OptimizerFactory]

def _named(cls: Callable[..., torch.optim.Optimizer], **settings: Any) -> OptimizerFactory:
    """A built-in optimizer as PyTorch runs it by default: on CUDA its multi-tensor
    (``foreach``) implementation, which the fake parameters would not select by themselves."""

    def build(params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        on_cuda = bool(params) and all(p.device.type == "cuda" for p in params)
        return cls(params, **settings, **({"foreach": True} if on_cuda else {}))

    return build


# The optimizers named by a string. Learning rates do not change what a step costs.
OPTIMIZERS: dict[str, OptimizerFactory] = {
    "sgd": _named(torch.optim.SGD, lr=0.01),
    "sgd-momentum": _named(torch.optim.SGD, lr=0.01, momentum=0.9),
    "sgd-nesterov": _named(torch.optim.SGD, lr=0.01, momentum=0.9, nesterov=True),
    "adam": _named(torch.optim.Adam),
    "adam-amsgrad": _named(torch.optim.Adam, amsgrad=True),
    "adamw": _named(torch.optim.AdamW),
    "adamw-amsgrad": _named(torch.optim.AdamW, amsgrad=True),
    "rmsprop": _named(torch.optim.RMSprop),
    "rmsprop-momentum": _named(torch.optim.RMSprop, momentum=0.9),
    "adagrad": _named(torch.optim.Adagrad),
}


def optimizer_factory(spec: OptimizerSpec) -> tuple[str, OptimizerFactory]:
    """A name for the report and a way to build the optimizer, from a name in OPTIMIZERS or
    a callable taking a parameter list (an optimizer class, a ``functools.partial``)."""
    if isinstance(spec, str):
        factory = OPTIMIZERS.get(spec.lower())
        if factory is None:
            raise InputError(f"optimizer must be one of {', '.join(repr(k) for k in OPTIMIZERS)} or a callable; got {spec!r}")
        return spec.lower(), factory
    if callable(spec):
        name = getattr(spec, "__name__", None) or getattr(getattr(spec, "func", None), "__name__", None) or repr(spec)
        return str(name), spec
    raise InputError(f"optimizer must be a name ({', '.join(OPTIMIZERS)}) or a callable returning an optimizer; got {spec!r}")


class _StepMode(TorchDispatchMode):  # type: ignore[no-untyped-call]
    def __init__(self, cost_model: CostModel) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.cost_model = cost_model
        self.live = LiveSet()
        self.macs = self.flops = 0
        self.uncounted: dict[str, int] = {}

    def __torch_dispatch__(self, func: OpOverload, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        cost = self.cost_model.cost(func, args, kwargs, out)
        if cost is None:
            name = str(func.overloadpacket)
            self.uncounted[name] = self.uncounted.get(name, 0) + 1
        else:
            self.macs += cost.macs
            self.flops += cost.flops
        self.live.after_op(func, args, kwargs, out)
        return out

    def reset(self) -> None:
        """Start counting afresh (what is alive stays alive)."""
        self.live.reset_peak()
        self.macs = self.flops = 0
        self.uncounted.clear()


def _fake_like(fake_mode: FakeTensorMode, tensor: torch.Tensor, requires_grad: bool) -> torch.Tensor:
    with no_dispatch():
        meta = torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype, device="meta")
    from torch._subclasses.fake_tensor import FakeTensor

    fake = FakeTensor(fake_mode, meta, tensor.device if tensor.device.type != "meta" else torch.device("cpu"))
    return fake.requires_grad_(requires_grad)


def optimizer_step(
    factory: OptimizerFactory, params_with_grads: Iterable[tuple[torch.Tensor, torch.Tensor]], cost_model: CostModel
) -> StepCost:
    """Run the optimizer on fake parameters shaped like ``params_with_grads``: the cost of a
    steady-state step (the second; the first creates the state). Only this step's own modes
    are active: a simulated cluster's fake mode may be around the analysis."""
    with _disable_current_modes():
        return _step(factory, params_with_grads, cost_model)


def _step(
    factory: OptimizerFactory, params_with_grads: Iterable[tuple[torch.Tensor, torch.Tensor]], cost_model: CostModel
) -> StepCost:
    fake_mode = FakeTensorMode()
    pairs = list(params_with_grads)
    params = []
    for param, grad in pairs:
        fake = torch.nn.Parameter(_fake_like(fake_mode, param, True))
        fake.grad = _fake_like(fake_mode, grad, False)
        params.append(fake)
    if not params:
        return StepCost(0, 0, 0, 0, {})
    counting = _StepMode(cost_model)
    try:
        with fake_mode, counting, torch.no_grad():
            optimizer = factory(params)  # inside: some optimizers (Adagrad) create their state here
            if not isinstance(optimizer, torch.optim.Optimizer):
                raise InputError(f"the optimizer callable returned {type(optimizer).__name__}, not a torch.optim.Optimizer")
            ours = {id(param) for param in params}
            if any(id(param) not in ours for group in optimizer.param_groups for param in group["params"]):
                raise InputError(
                    "the optimizer callable must build a new optimizer over the parameters it is given "
                    "(e.g. functools.partial(torch.optim.SGD, lr=0.1)); it returned one over other parameters, "
                    "which the analysis will not step"
                )
            # The first step creates the state; the second is a steady-state step, whose
            # peak has all the state alive at once. Only the second is counted.
            optimizer.step()
            counting.reset()
            optimizer.step()
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"the optimizer's step failed on the model's parameters ({type(exc).__name__}: {exc})") from exc
    finally:
        counting.live.stop()  # its weak-reference callbacks must not outlive the step, even a failed one
    state_bytes = 0
    seen: set[int] = set()
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor) and id(value) not in seen:
                seen.add(id(value))
                state_bytes += value.numel() * value.element_size()
    return StepCost(state_bytes, counting.live.peak, counting.macs, counting.flops, counting.uncounted, counting.live.trace())
