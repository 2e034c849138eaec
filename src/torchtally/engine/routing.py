"""Active parameters per token, for mixture-of-experts models whose routing the run shows.

A matrix product that reads a weight is seen with the weight's storage; its MACs divided by
the elements it read give the rows (tokens) that went through. Dense weights see every
token. Expert weights are *routed*: each token reaches only some of them, which shows as a
product reading a slice of the parameter along its expert dimension (``w[expert]``, the
eager loop over experts) or as a grouped matmul over all experts (``_grouped_mm``). A routed
parameter's active share is its MACs divided by the number of tokens: with E experts and
top-k routing that is k/E of its elements on average. Tokens are the rows most dense weight
matrices processed in the forward (the batch's tokens, which the projections see): not the
most any one did, since a few see other counts (a language-model head only the last token,
multi-head latent attention's key/value expansion the whole cache at every decode step).

Only an operand of a parameter of rank 3 or more that is one entry along its leading dimension
(``w[e]``, or its transpose, as ``linear`` passes it to ``mm``) counts as an expert slice: other
slices of a weight (the q/k/v thirds of a fused ``in_proj_weight``) are dense. Biases (1-D) are
skipped: they hold no rows, so their MACs/elements would be no token count."""

from __future__ import annotations

from collections import Counter

import torch
from torch._ops import OpOverload

# Matrix products whose operands may be weights: (name of the packet, whether it is grouped).
_PRODUCTS = {
    "mm": False, "addmm": False, "bmm": False, "baddbmm": False, "linear": False, "matmul": False,
    "_addmm_activation": False, "_grouped_mm": True, "_scaled_grouped_mm": True,
}


class WeightUse:
    """Rows processed by each weight in the forward's matrix products."""

    def __init__(self) -> None:
        self._by_storage: dict[int, tuple[int, torch.Size]] = {}  # storage key -> (id of the parameter, its shape)
        self._products: dict[OpOverload, bool | None] = {}
        self.routed_macs: dict[int, int] = {}  # id(parameter) -> MACs of products reading a slice of it / grouped
        self._rows: dict[int, int] = {}  # id(dense parameter) -> the most rows one product of it processed
        self._tokens: int | None = None  # `tokens`, until a row count changes

    def add_weight(self, param_id: int, tensor: torch.Tensor) -> None:
        """``tensor`` (the parameter itself or its fake twin, same shape) holds the data of parameter ``param_id``."""
        try:
            self._by_storage[tensor.untyped_storage()._cdata] = (param_id, tensor.shape)
        except (RuntimeError, NotImplementedError):
            pass

    def after_product(self, func: OpOverload, args: tuple[object, ...], macs: int) -> None:
        grouped = self._products[func] if func in self._products else self._classify(func)
        if grouped is None or macs <= 0:
            return
        for arg in args:
            if not isinstance(arg, torch.Tensor) or arg.dim() < 2 or arg.numel() == 0:
                continue  # a bias (or scalar) holds no rows
            try:
                found = self._by_storage.get(arg.untyped_storage()._cdata)
            except (RuntimeError, NotImplementedError):
                continue
            if found is None:
                continue
            param_id, shape = found
            if grouped or _expert_slice(arg.shape, shape):
                self.routed_macs[param_id] = self.routed_macs.get(param_id, 0) + macs
            else:  # rows = MACs / elements read: a slice reads fewer, a broadcast one no more
                rows = macs // min(arg.numel(), shape.numel())
                if rows > self._rows.get(param_id, 0):
                    self._rows[param_id] = rows
                    self._tokens = None

    @property
    def tokens(self) -> int:
        """The row count the most dense weights processed (the larger on a tie); 0 with none."""
        if self._tokens is None:
            counts = Counter(self._rows.values())
            self._tokens = max(counts, key=lambda rows: (counts[rows], rows)) if counts else 0
        return self._tokens

    def _classify(self, func: OpOverload) -> bool | None:
        grouped = _PRODUCTS.get(func.overloadpacket.__name__) if func.namespace == "aten" else None
        self._products[func] = grouped
        return grouped

    def active_share(self, param_id: int, numel: int) -> int | None:
        """Elements of a routed parameter one token uses on average; None for a dense one."""
        macs = self.routed_macs.get(param_id)
        if macs is None or self.tokens == 0:
            return None
        return min(numel, macs // self.tokens)


def _expert_slice(operand: torch.Size, param: torch.Size) -> bool:
    """Whether ``operand`` has the shape of ``param[e]`` (or of its transpose, as ``linear``
    hands ``w[e].t()`` to ``mm``): one expert of a stacked (E, ...) weight."""
    if len(param) < 3:
        return False
    one = param[1:]
    return operand == one or operand == one[:-2] + (one[-1], one[-2])
