"""The public surface: exactly the names in __all__, all importable."""

from __future__ import annotations

import torchtally

EXPECTED = {
    "Column", "Cost", "DataTable", "FormulaError", "ForwardError", "InputError", "LayerReport", "Memory", "MemoryTimeline",
    "ModelReport", "NeedsRealValues", "OpStats", "Parallel", "ParallelLayout", "CollectiveStats", "Cluster", "simulated_cluster", "EstimateStats", "Hardware", "calibrate", "estimate_time", "hardware", "hardware_names", "RowSetting", "Style", "TensorSpec", "TimingOptions", "TimingStats", "TorchtallyError", "__version__", "analyze", "analyze_generation", "DecodeStep", "GenerationReport", "generation_schema",
    "compare", "register_formula", "report_schema", "summary", "table_schema", "unregister_formula",
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(torchtally.__all__) == EXPECTED
    for name in torchtally.__all__:
        assert hasattr(torchtally, name)


def test_errors_share_one_base_class() -> None:
    for error in (torchtally.InputError, torchtally.ForwardError, torchtally.FormulaError):
        assert issubclass(error, torchtally.TorchtallyError)
