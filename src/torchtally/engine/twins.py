"""A meta-device model's fake run happens "as if on the CPU" (see run.py). Its own code
must see that too: ``torch.ones(4, device=self.weight.device)`` or ``self.device`` would
otherwise name ``meta`` while the inputs and every result are (fake) CPU tensors, and the
first operator mixing them fails as if the model were wrong.

So for the run, every meta parameter, buffer and plain tensor attribute is replaced in its
slot by its fake CPU twin (the one the counting mode would have made on first use). The
model state guard puts the user's tensors back afterwards, as it does for a training
run's stand-ins."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from .fakes import FakeConverter
from .params import ParameterIndex
from .training import stand_in_parameters
from .tree import ModuleNode


def _on_meta(value: object) -> bool:
    return isinstance(value, torch.Tensor) and not is_lazy(value) and value.device.type == "meta"


def twins_in_slots(nodes: list[ModuleNode], index: ParameterIndex, fakes: FakeConverter) -> list[nn.Parameter]:
    """Put fake CPU twins in the slots of a meta model; return the parameters' stand-ins
    (reading one reads the user's parameter, see ``ParameterIndex.add_stand_in``)."""
    stand_ins = stand_in_parameters(nodes, index, fakes)
    for node in nodes:
        module = node.module
        for name, buffer in list(module._buffers.items()):
            if _on_meta(buffer):
                assert buffer is not None
                module._buffers[name] = fakes.tensor(buffer)
        # A tensor kept as a plain attribute (not registered) is read the same way.
        for name, value in list(module.__dict__.items()):
            if _on_meta(value) and not isinstance(value, nn.Parameter):
                module.__dict__[name] = fakes.tensor(value)
    return stand_ins
