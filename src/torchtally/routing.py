"""Active parameters per token, for mixture-of-experts models whose routing the run shows.

A matrix product that reads a weight is seen with the weight's storage; its MACs divided by
the elements it read give the rows (tokens) that went through. Dense weights see every
token. Expert weights are *routed*: each token reaches only some of them, which shows as a
product reading a slice of the parameter along its expert dimension (``w[expert]``, the
eager loop over experts) or as a grouped matmul over all experts (``_grouped_mm``). A routed
parameter's active share is its MACs divided by the number of tokens: with E experts and
top-k routing that is k/E of its elements on average. Tokens are the most rows any weight
matrix processed in the forward (the batch's tokens, which every dense projection sees)."""

from __future__ import annotations

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
        self._by_storage: dict[int, tuple[int, int]] = {}  # storage key -> (id of the parameter, its elements)
        self._products: dict[OpOverload, bool | None] = {}
        self.routed_macs: dict[int, int] = {}  # id(parameter) -> MACs of products reading a slice of it / grouped
        self.tokens = 0

    def add_weight(self, param_id: int, tensor: torch.Tensor, numel: int) -> None:
        """``tensor`` (the parameter itself or its fake twin) holds the data of parameter ``param_id``."""
        try:
            self._by_storage[tensor.untyped_storage()._cdata] = (param_id, numel)
        except (RuntimeError, NotImplementedError):
            pass

    def after_product(self, func: OpOverload, args: tuple[object, ...], macs: int) -> None:
        grouped = self._products[func] if func in self._products else self._classify(func)
        if grouped is None or macs <= 0:
            return
        for arg in args:
            if not isinstance(arg, torch.Tensor) or arg.numel() == 0:
                continue
            try:
                found = self._by_storage.get(arg.untyped_storage()._cdata)
            except (RuntimeError, NotImplementedError):
                continue
            if found is None:
                continue
            param_id, numel = found
            if grouped or arg.numel() < numel:
                self.routed_macs[param_id] = self.routed_macs.get(param_id, 0) + macs
            else:
                self.tokens = max(self.tokens, macs // numel)

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
