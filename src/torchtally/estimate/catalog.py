"""Datasheet figures of common accelerators: `hardware(name)`, `hardware_names()`.

Every peak is the **dense** figure. NVIDIA's datasheets print tensor-core peaks "with
sparsity" (2:4 structured sparsity doubles them) and mark that in a footnote: those are
halved here (H100 SXM bf16: 1,979 TFLOP/s sparse -> 989 dense). ``fp32`` is the plain
(non-tensor) FP32 rate, which PyTorch uses by default (``torch.backends.cuda.matmul.
allow_tf32`` is off); ``tf32`` is there for those who turn it on. ``vector_flops`` holds the
non-tensor rates of elementwise work. Bandwidths are the datasheets' (NVLink, xGMI and PCIe
as printed: both directions together). ``network_bandwidth`` is per node, from the vendor's
8-GPU reference system (DGX / HGX / AMD Instinct platform) where there is one.

``call_overhead`` is not a datasheet figure: a few microseconds is what one eager PyTorch
kernel launch costs; `calibrate` measures it where the chip is at hand."""

from __future__ import annotations

import difflib

from ..errors import InputError
from .hardware import Hardware

T = 1e12
G = 1e9
GB = 10**9
GIB = 2**30
_LAUNCH = 4e-6  # seconds per kernel launch of eager PyTorch on a GPU (typical, not a datasheet figure)


def _gpu(
    name: str,
    peaks: dict[str, float],
    vector: dict[str, float],
    bandwidth: float,
    memory: int,
    *,
    interconnect: float | None,
    pcie: float,
    network: float | None,
) -> Hardware:
    return Hardware(
        name=name, peak_flops=peaks, vector_flops=vector, memory_bandwidth=bandwidth, memory_bytes=memory,
        call_overhead=_LAUNCH, interconnect_bandwidth=interconnect, pcie_bandwidth=pcie,
        network_bandwidth=network, source="datasheet",
    )


def _a100(name: str, bandwidth: float, memory: int, pcie_card: bool) -> Hardware:
    # NVIDIA A100 Tensor Core GPU datasheet (nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/
    # nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf): FP64 9.7, FP64 TC 19.5, FP32 19.5, TF32 156
    # (312 sparse), BF16/FP16 312 (624 sparse), INT8 624 TOPS (1,248 sparse); NVLink 600 GB/s
    # (a bridge of 2 GPUs for PCIe cards), PCIe Gen4 64 GB/s. Non-tensor FP16 78 and BF16 39 TFLOP/s:
    # NVIDIA A100 Tensor Core GPU Architecture whitepaper, table 1. Network: DGX A100 datasheet,
    # 8x 200 Gb/s HDR InfiniBand = 200 GB/s per node.
    return _gpu(
        name,
        {"fp64": 19.5 * T, "fp32": 19.5 * T, "tf32": 156 * T, "bf16": 312 * T, "fp16": 312 * T, "int8": 624 * T},
        {"fp64": 9.7 * T, "fp32": 19.5 * T, "bf16": 39 * T, "fp16": 78 * T},
        bandwidth, memory, interconnect=600 * GB, pcie=64 * GB, network=None if pcie_card else 200 * GB,
    )


def _hopper(name: str, bandwidth: float, memory: int) -> Hardware:
    # NVIDIA H100 Tensor Core GPU datasheet (resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-
    # datasheet), H100 SXM column: FP64 34, FP64 TC 67, FP32 67, TF32 989 / BF16 1,979 / FP16 1,979 /
    # FP8 3,958 / INT8 3,958 "with sparsity" -> halved; NVLink 900 GB/s, PCIe Gen5 128 GB/s. The H200
    # datasheet (nvidia.com/en-us/data-center/h200) prints the same compute, 141 GB at 4.8 TB/s.
    # Non-tensor FP16/BF16 133.8 TFLOP/s: NVIDIA H100 Tensor Core GPU Architecture whitepaper, table 3.
    # Network: DGX H100 / H200 datasheet, 8x 400 Gb/s ConnectX-7 = 400 GB/s per node.
    return _gpu(
        name,
        {"fp64": 67 * T, "fp32": 67 * T, "tf32": 494.5 * T, "bf16": 989.5 * T, "fp16": 989.5 * T,
         "fp8": 1979 * T, "int8": 1979 * T},
        {"fp64": 34 * T, "fp32": 67 * T, "bf16": 133.8 * T, "fp16": 133.8 * T},
        bandwidth, memory, interconnect=900 * GB, pcie=128 * GB, network=400 * GB,
    )


def _catalog() -> dict[str, Hardware]:
    entries = [
        _a100("a100-sxm-40gb", 1555 * GB, 40 * GIB, False),  # A100 datasheet: 40GB HBM2, 1,555 GB/s
        _a100("a100-sxm-80gb", 2039 * GB, 80 * GIB, False),  # A100 datasheet: 80GB HBM2e SXM, 2,039 GB/s
        _a100("a100-pcie-80gb", 1935 * GB, 80 * GIB, True),  # A100 datasheet: 80GB HBM2e PCIe, 1,935 GB/s
        _hopper("h100-sxm", 3350 * GB, 80 * GIB),  # H100 datasheet: 80 GB, 3.35 TB/s
        _hopper("h200", 4800 * GB, 141 * GB),  # H200 datasheet: 141 GB HBM3e, 4.8 TB/s
        # H100 datasheet, H100 PCIe column: FP64 26, FP32 51, TF32 756 / BF16 1,513 / FP16 1,513 /
        # FP8 3,026 / INT8 3,026 with sparsity -> halved; 80 GB HBM2e at 2 TB/s; NVLink bridge 600 GB/s,
        # PCIe Gen5 128 GB/s. Non-tensor FP16/BF16: twice FP32, as on the SXM part (whitepaper).
        _gpu(
            "h100-pcie",
            {"fp64": 51 * T, "fp32": 51 * T, "tf32": 378 * T, "bf16": 756.5 * T, "fp16": 756.5 * T,
             "fp8": 1513 * T, "int8": 1513 * T},
            {"fp64": 26 * T, "fp32": 51 * T, "bf16": 102 * T, "fp16": 102 * T},
            2000 * GB, 80 * GIB, interconnect=600 * GB, pcie=128 * GB, network=None,
        ),
        # NVIDIA HGX B200 (Blackwell) datasheet (nvidia.com/en-us/data-center/hgx), 8-GPU figures / 8:
        # FP64/FP64 TC 37, FP32 75, TF32 2.2 PF / FP16-BF16 4.5 PF / FP8 9 PF / INT8 9 POPS with sparsity
        # -> halved; 180 GB HBM3e at 7.7 TB/s per GPU (1,440 GB / 62 TB/s per 8); NVLink 5 1.8 TB/s;
        # PCIe Gen5 128 GB/s; DGX B200: 8x 400 Gb/s ConnectX-7 = 400 GB/s per node.
        _gpu(
            "b200",
            {"fp64": 37 * T, "fp32": 75 * T, "tf32": 1100 * T, "bf16": 2250 * T, "fp16": 2250 * T,
             "fp8": 4500 * T, "int8": 4500 * T},
            {"fp64": 37 * T, "fp32": 75 * T, "bf16": 150 * T, "fp16": 150 * T},
            7700 * GB, 180 * GB, interconnect=1800 * GB, pcie=128 * GB, network=400 * GB,
        ),
        # NVIDIA L4 datasheet (nvidia.com/en-us/data-center/l4): FP32 30.3, TF32 120 / FP16-BF16 242 /
        # FP8 485 / INT8 485 with sparsity -> halved; 24 GB GDDR6 at 300 GB/s; PCIe Gen4 x16 64 GB/s;
        # no NVLink.
        _gpu(
            "l4",
            {"fp32": 30.3 * T, "tf32": 60 * T, "bf16": 121 * T, "fp16": 121 * T, "fp8": 242.5 * T, "int8": 242.5 * T},
            {"fp32": 30.3 * T},
            300 * GB, 24 * GB, interconnect=None, pcie=64 * GB, network=None,
        ),
        # NVIDIA L40S datasheet (nvidia.com/en-us/data-center/l40s): FP32 91.6, TF32 366 / BF16-FP16 733 /
        # FP8 1,466 / INT8 1,466 with sparsity -> halved; 48 GB GDDR6 at 864 GB/s; PCIe Gen4 x16 64 GB/s.
        _gpu(
            "l40s",
            {"fp32": 91.6 * T, "tf32": 183 * T, "bf16": 366.5 * T, "fp16": 366.5 * T, "fp8": 733 * T, "int8": 733 * T},
            {"fp32": 91.6 * T},
            864 * GB, 48 * GB, interconnect=None, pcie=64 * GB, network=None,
        ),
        # NVIDIA Ada GPU Architecture whitepaper, appendix table (GeForce RTX 4090), dense figures with
        # FP32 accumulate (what PyTorch uses): FP32 82.6, TF32 82.6, BF16/FP16 165.2, FP8 330.3,
        # INT8 660.6 TOPS; 24 GB GDDR6X at 1,008 GB/s; PCIe Gen4 x16 64 GB/s; no NVLink.
        _gpu(
            "rtx-4090",
            {"fp32": 82.6 * T, "tf32": 82.6 * T, "bf16": 165.2 * T, "fp16": 165.2 * T, "fp8": 330.3 * T, "int8": 660.6 * T},
            {"fp32": 82.6 * T},
            1008 * GB, 24 * GB, interconnect=None, pcie=64 * GB, network=None,
        ),
        # NVIDIA Ampere GA102 GPU Architecture whitepaper, table (GeForce RTX 3090), dense, FP32 accumulate:
        # FP32 35.6, TF32 35.6, BF16/FP16 71, INT8 284 TOPS; 24 GB GDDR6X at 936 GB/s; NVLink bridge
        # 112.5 GB/s; PCIe Gen4 x16 64 GB/s.
        _gpu(
            "rtx-3090",
            {"fp32": 35.6 * T, "tf32": 35.6 * T, "bf16": 71 * T, "fp16": 71 * T, "int8": 284 * T},
            {"fp32": 35.6 * T},
            936 * GB, 24 * GB, interconnect=112.5 * GB, pcie=64 * GB, network=None,
        ),
        # AMD Instinct MI300X data sheet (amd.com/en/products/accelerators/instinct/mi300/mi300x.html):
        # FP64 matrix 163.4, FP32 matrix 163.4, TF32 653.7, FP16/BF16 1,307.4, FP8 2,614.9, INT8 2,614.9
        # (dense; the sparsity figures are twice these); FP64 vector 81.7, FP32 vector 163.4; 192 GB HBM3
        # at 5.3 TB/s; Infinity Fabric 896 GB/s (7 links x 128 GB/s); PCIe Gen5 x16 128 GB/s; the AMD
        # Instinct MI300X platform: 8x 400 GbE = 400 GB/s per node.
        _gpu(
            "mi300x",
            {"fp64": 163.4 * T, "fp32": 163.4 * T, "tf32": 653.7 * T, "bf16": 1307.4 * T, "fp16": 1307.4 * T,
             "fp8": 2614.9 * T, "int8": 2614.9 * T},
            {"fp64": 81.7 * T, "fp32": 163.4 * T},
            5300 * GB, 192 * GB, interconnect=896 * GB, pcie=128 * GB, network=400 * GB,
        ),
    ]
    return {entry.name: entry for entry in entries}


CATALOG = _catalog()
LOCAL = "local"  # the name of the machine at hand: measured by `calibrate`


def hardware_names() -> list[str]:
    """The names `hardware` knows, in catalog order (and ``"local"``: this machine, calibrated)."""
    return [*CATALOG, LOCAL]


def hardware(name: str, *, compute_efficiency: float = 1.0, memory_efficiency: float = 1.0) -> Hardware:
    """A chip from the catalog by name (``"h100-sxm"``), with the fractions of its datasheet
    peaks a workload reaches; ``"local"`` measures this machine (`calibrate`)."""
    if not isinstance(name, str):
        raise InputError(f"hardware name must be a string such as 'h100-sxm'; got {name!r}")
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    if key == LOCAL:
        from .calibrate import calibrate

        found = calibrate()
    elif key in CATALOG:
        found = CATALOG[key]
    else:
        # Names that start with what was typed ("h100" -> the H100s) first, then look-alikes.
        starting = [known for known in hardware_names() if known.startswith(key)]
        close = list(dict.fromkeys(starting + difflib.get_close_matches(key, hardware_names(), n=3, cutoff=0.5)))[:3]
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise InputError(f"unknown hardware {name!r}{hint} (known: {', '.join(hardware_names())})")
    return found.with_efficiency(compute_efficiency, memory_efficiency)
