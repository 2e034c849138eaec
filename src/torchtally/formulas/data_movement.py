"""Operators that create, view, copy, gather or reshape data: known to cost no FLOPs.

Views (``func.is_view``) and in-place view changes are recognised generically; the list
below names the rest. An operator that is neither here nor in the formula table is
reported as uncounted, never as zero."""

from __future__ import annotations

import torch
from torch._ops import OpOverload

from .registry import aten_ops, formula, zero_cost

formula(
    *aten_ops(
        # factories and random-number generators
        "empty", "empty_like", "empty_strided", "empty_permuted", "new_empty", "new_empty_strided",
        "zeros", "zeros_like", "new_zeros", "ones", "ones_like", "new_ones", "full", "full_like",
        "new_full", "scalar_tensor", "arange", "linspace", "logspace", "eye", "tensor",
        "rand", "rand_like", "randn", "randn_like", "randint", "randint_like", "randperm",
        "bernoulli", "bernoulli_", "normal", "normal_", "uniform_", "random_", "exponential_",
        "multinomial", "lift", "lift_fresh",
        # reshaping, copying, gathering and scattering
        "_unsafe_view", "_reshape_alias", "reshape", "contiguous", "detach_", "cat", "stack",
        "hstack", "vstack", "concat", "concatenate", "split_with_sizes_copy", "unsafe_split",
        "unsafe_split_with_sizes", "unsafe_chunk", "index", "_unsafe_index", "index_select",
        "gather", "take", "take_along_dim", "scatter", "scatter_", "index_copy", "index_copy_", "index_fill", "index_fill_",
        "masked_select", "embedding", "constant_pad_nd", "reflection_pad1d", "reflection_pad2d",
        "reflection_pad3d", "replication_pad1d", "replication_pad2d", "replication_pad3d",
        "_pad_circular", "pad", "roll", "flip", "repeat", "repeat_interleave", "tile", "tril",
        "triu", "tril_", "triu_", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
        "native_channel_shuffle", "im2col", "one_hot", "nonzero", "nonzero_static", "argwhere",
        "unfold_copy", "diag_embed", "diag", "block_diag", "resize_", "resize_as_", "set_",
        "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
        "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d",
        # metadata and assertions
        "_local_scalar_dense", "item", "sym_size", "sym_stride", "sym_numel", "sym_storage_offset",
        "_assert_async", "_assert_scalar", "_functional_assert_async", "_assert_tensor_metadata",
        "record_stream", "is_same_size", "_has_compatible_shallow_copy_type", "equal",
        "_pin_memory", "is_pinned", "_nested_tensor_from_mask", "_nested_tensor_from_mask_left_aligned",
        "_nested_tensor_size", "_nested_tensor_strides", "_nested_tensor_storage_offsets", "to_padded_tensor",
        "_nested_from_padded", "_nested_view_from_buffer", "_pack_padded_sequence", "_pad_packed_sequence",
        "max_unpool2d", "max_unpool3d", "_linalg_check_errors",
    )
)(zero_cost)

for _namespace_op in ("device", "layout", "dtype"):
    _prim = getattr(torch.ops.prim, _namespace_op, None)
    if _prim is not None:
        formula(_prim)(zero_cost)


def is_data_movement(func: OpOverload) -> bool:
    """Views and in-place view changes, recognised from the operator's schema and tags; and
    the profiler's markers (``record_function`` regions, which optimizers open)."""
    if func.is_view or torch.Tag.inplace_view in func.tags or func.namespace == "profiler":
        return True
    # `*_copy` variants of views (view_copy, permute_copy, ...) copy instead of aliasing.
    return torch.Tag.view_copy in func.tags
