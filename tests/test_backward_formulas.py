"""Cost formulas of the backward pass (torchtally/formulas/backward.py).

The operators are costed the way the analysis costs them: a TorchDispatchMode asks
`CostModel` for every operator that runs while ``loss.backward()`` executes.

- Products (matmul, convolution, attention, recurrent kernels): our MACs are compared with
  PyTorch's own `FlopCounterMode` (which reports 2 FLOPs per multiply-accumulate) wherever it
  covers the operator with the same convention, and derived by hand, with the derivation in
  a comment, where it does not.
- Vector operators: hand-derived from the convention in backward.py's docstring.
- Every operator the forward and backward passes of common models run has a formula."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch._ops import OpOverload
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from torchtally.formulas.registry import Cost
from torchtally.formulas.resolve import CostModel


class CostRecorder(TorchDispatchMode):
    """Costs every operator that runs: sums per operator (by packet name), and the
    operators no formula covers."""

    def __init__(self) -> None:
        super().__init__()
        self.model = CostModel()
        self.costs: dict[str, Cost] = {}
        self.uncounted: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(
        self, func: OpOverload, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        cost = self.model.cost(func, args, kwargs, out)
        if cost is None:
            self.uncounted[str(func)] += 1
        else:
            name = func.overloadpacket.__name__
            seen = self.costs.get(name, Cost())
            self.costs[name] = Cost(macs=seen.macs + cost.macs, flops=seen.flops + cost.flops)
        return out

    @property
    def macs(self) -> int:
        return sum(cost.macs for cost in self.costs.values())


def record_backward(loss: torch.Tensor) -> CostRecorder:
    recorder = CostRecorder()
    with recorder:
        loss.backward(retain_graph=True)
    return recorder


def flop_counter_backward_macs(loss: torch.Tensor) -> int:
    """PyTorch's independent count of the same backward pass (2 FLOPs per MAC)."""
    with FlopCounterMode(display=False) as counter:
        loss.backward(retain_graph=True)
    total = int(counter.get_total_flops())
    assert total % 2 == 0
    return total // 2


def scalar(out: Any) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        out = out[0]  # model outputs: (logits, ...) or ModelOutput
    loss: torch.Tensor = out.float().sum()
    return loss


# --------------------------------------------------------------------------------------
# The models: (model, input) in training mode, small inputs
# --------------------------------------------------------------------------------------

Builder = Callable[[], tuple[nn.Module, torch.Tensor]]


def mlp() -> tuple[nn.Module, torch.Tensor]:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 4)), torch.randn(3, 8)


def small_cnn() -> tuple[nn.Module, torch.Tensor]:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(8, 4),
    )
    return model, torch.randn(2, 3, 16, 16)


def resnet18() -> tuple[nn.Module, torch.Tensor]:
    torchvision = pytest.importorskip("torchvision")
    return torchvision.models.resnet18(), torch.randn(1, 3, 64, 64)


def small_vit() -> tuple[nn.Module, torch.Tensor]:
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64
    )
    return model, torch.randn(1, 3, 32, 32)


def encoder_layer() -> tuple[nn.Module, torch.Tensor]:
    return nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), torch.randn(2, 5, 32)


def lstm() -> tuple[nn.Module, torch.Tensor]:
    return nn.LSTM(8, 16, num_layers=2), torch.randn(5, 2, 8)


def gru() -> tuple[nn.Module, torch.Tensor]:
    return nn.GRU(8, 16, num_layers=2), torch.randn(5, 2, 8)


TOKENS = (2, 8)  # batch 2, sequence 8
SPECIAL_IDS = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}


def gpt2() -> tuple[nn.Module, torch.Tensor]:
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=32, **SPECIAL_IDS)
    return transformers.GPT2LMHeadModel(config), torch.randint(0, 100, TOKENS)


def llama() -> tuple[nn.Module, torch.Tensor]:
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
        vocab_size=100, **SPECIAL_IDS,
    )
    return transformers.LlamaForCausalLM(config), torch.randint(0, 100, TOKENS)


def bert() -> tuple[nn.Module, torch.Tensor]:
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=100,
        pad_token_id=0,
    )
    return transformers.BertForSequenceClassification(config), torch.randint(0, 100, TOKENS)


MODELS = [
    pytest.param(mlp, id="mlp"),
    pytest.param(small_cnn, id="cnn"),
    pytest.param(resnet18, id="resnet18"),
    pytest.param(small_vit, id="vit"),
    pytest.param(encoder_layer, id="transformer-encoder-layer"),
    pytest.param(lstm, id="lstm"),
    pytest.param(gru, id="gru"),
    pytest.param(gpt2, id="gpt2"),
    pytest.param(llama, id="llama"),
    pytest.param(bert, id="bert"),
]


def train_forward(build: Builder) -> tuple[torch.Tensor, CostRecorder]:
    torch.manual_seed(0)
    model, x = build()
    model.train()
    with CostRecorder() as forward:
        loss = scalar(model(x))
    return loss, forward


@pytest.mark.parametrize("build", MODELS)
def test_no_uncounted_operator_in_forward_or_backward(build: Builder) -> None:
    loss, forward = train_forward(build)
    backward = record_backward(loss)
    assert dict(forward.uncounted) == {}
    assert dict(backward.uncounted) == {}


# --------------------------------------------------------------------------------------
# Backward MACs against FlopCounterMode
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(mlp, id="mlp"),  # mm
        pytest.param(small_cnn, id="cnn"),  # convolution_backward, mm
        pytest.param(resnet18, id="resnet18"),  # convolution_backward (first conv: weight only), mm
        pytest.param(encoder_layer, id="transformer-encoder-layer"),  # dropout -> math attention: bmm, mm
        pytest.param(gru, id="gru"),  # decomposed on the CPU: mm
        pytest.param(gpt2, id="gpt2"),  # dropout -> math attention: bmm, mm
        pytest.param(bert, id="bert"),
    ],
)
def test_backward_macs_equal_flop_counter(build: Builder) -> None:
    loss, _ = train_forward(build)
    ours = record_backward(loss)
    assert ours.macs > 0
    assert ours.macs == flop_counter_backward_macs(loss)


def test_vit_backward_macs_flop_counter_plus_cpu_flash_attention() -> None:
    # FlopCounterMode has no formula for _scaled_dot_product_flash_attention_for_cpu_backward
    # (it counts 0 for it), so the attention is derived by hand: 2 layers; tokens
    # (32/8)^2 + 1 class token = 17; 2 heads of E = Ev = 16; not causal: 17 * 17 = 289
    # pairs; per pair and head 3E + 2Ev = 80 MACs -> 289 * 80 * 2 heads * 2 layers.
    attention = 289 * 80 * 2 * 2
    assert attention == 92_480
    loss, _ = train_forward(small_vit)
    ours = record_backward(loss)
    assert ours.costs["_scaled_dot_product_flash_attention_for_cpu_backward"] == Cost(macs=attention, flops=2 * attention)
    assert ours.macs == flop_counter_backward_macs(loss) + attention


def test_llama_backward_macs_flop_counter_plus_causal_gqa_attention() -> None:
    # Llama runs the CPU flash kernel with is_causal=True and 2 key/value heads for 4 query
    # heads (GQA): counted per query head. 2 layers, batch 2, 4 query heads, length 8:
    # causal pairs 8 * 9 / 2 = 36; E = Ev = 64/4 = 16: 3E + 2Ev = 80 MACs per pair and head.
    attention = 36 * 80 * (2 * 4) * 2
    assert attention == 46_080
    loss, _ = train_forward(llama)
    ours = record_backward(loss)
    assert ours.costs["_scaled_dot_product_flash_attention_for_cpu_backward"].macs == attention
    assert ours.macs == flop_counter_backward_macs(loss) + attention


def test_lstm_backward_by_hand() -> None:
    # FlopCounterMode has no formula for mkldnn_rnn_layer_backward. LSTM(8, 16, 2 layers),
    # input (5, 2, 8): 10 steps x sequences. Weight matrices: layer 0: 64*8 + 64*16 = 1536,
    # layer 1: 64*16 + 64*16 = 2048. Forward MACs 10 * (1536 + 2048) = 35,840; backward: the
    # data and the weight gradients, each the forward's: 71,680.
    # Pointwise: forward 13 + 8 (biases) = 21 per step, sequence and hidden unit -> backward
    # 2 * 21 * 10 * 16 = 6,720 per layer, 13,440 for two.
    loss, _ = train_forward(lstm)
    ours = record_backward(loss)
    assert ours.costs["mkldnn_rnn_layer_backward"] == Cost(macs=71_680, flops=2 * 71_680 + 13_440)
    assert flop_counter_backward_macs(loss) == 0


# --------------------------------------------------------------------------------------
# Convolution backward
# --------------------------------------------------------------------------------------


def conv_backward(conv: nn.Module, shape: tuple[int, ...], input_grad: bool = True) -> tuple[CostRecorder, int]:
    x = torch.randn(*shape, requires_grad=input_grad)
    loss = conv(x).sum()
    return record_backward(loss), flop_counter_backward_macs(loss)


def test_conv2d_backward_input_weight_and_bias() -> None:
    # Conv2d(3, 8, 3, padding=1) on (2, 3, 10, 10): output 2*8*10*10 = 1,600 elements, each
    # 3*3*3 = 27 MACs: forward 43,200. Input and weight gradients: 2 x 43,200 MACs. Bias
    # gradient: 1 add per output-gradient element: 1,600 FLOPs.
    ours, reference = conv_backward(nn.Conv2d(3, 8, 3, padding=1), (2, 3, 10, 10))
    assert ours.costs["convolution_backward"] == Cost(macs=86_400, flops=2 * 86_400 + 1_600)
    assert reference == 86_400


def test_conv2d_backward_weight_only_without_bias() -> None:
    # As above, the input needs no gradient and there is no bias: output_mask = [F, T, F].
    ours, reference = conv_backward(nn.Conv2d(3, 8, 3, padding=1, bias=False), (2, 3, 10, 10), input_grad=False)
    assert ours.costs["convolution_backward"] == Cost(macs=43_200, flops=86_400)
    assert reference == 43_200


def test_conv_backward_frozen_weight() -> None:
    # Weight and bias frozen: only the input gradient, output_mask = [T, F, F].
    # Conv1d(2, 4, 3, stride=2) on (1, 2, 11): L_out = (11 - 3) / 2 + 1 = 5; 4 * 5 = 20
    # outputs x 2 * 3 = 6 MACs = 120.
    conv = nn.Conv1d(2, 4, 3, stride=2).requires_grad_(False)
    ours, reference = conv_backward(conv, (1, 2, 11))
    assert ours.costs["convolution_backward"] == Cost(macs=120, flops=240)
    assert reference == 120


def test_transposed_conv_backward() -> None:
    # ConvTranspose2d(3, 4, 3, stride=2) on (1, 3, 5, 5): forward MACs = input elements
    # 75 x (C_out/groups) * 3*3 = 36 -> 2,700. Input + weight gradients: 5,400 MACs.
    # Output 11x11: bias gradient 4 * 121 = 484 FLOPs.
    ours, reference = conv_backward(nn.ConvTranspose2d(3, 4, 3, stride=2), (1, 3, 5, 5))
    assert ours.costs["convolution_backward"] == Cost(macs=5_400, flops=2 * 5_400 + 484)
    assert reference == 5_400


@pytest.mark.parametrize(
    ("conv", "shape", "expected"),
    [
        # Conv2d(8, 12, 3, groups=4) on (1, 8, 6, 6): output 12*4*4 = 192 elements x (8/4)*9
        # = 18 MACs = 3,456 per gradient: 6,912. Bias: 192.
        pytest.param(nn.Conv2d(8, 12, 3, groups=4), (1, 8, 6, 6), Cost(macs=6_912, flops=2 * 6_912 + 192), id="grouped"),
        # depthwise Conv2d(4, 4, 3, groups=4) on (2, 4, 5, 5): output 2*4*3*3 = 72 x 1*9 = 648
        # per gradient: 1,296. Bias: 72.
        pytest.param(nn.Conv2d(4, 4, 3, groups=4), (2, 4, 5, 5), Cost(macs=1_296, flops=2 * 1_296 + 72), id="depthwise"),
    ],
)
def test_grouped_conv_backward_by_hand(conv: nn.Module, shape: tuple[int, ...], expected: Cost) -> None:
    # FlopCounterMode's weight-gradient formula ignores groups (it charges
    # C_in * C_out * kernel per position, `groups` times the real products), so these are
    # derived by hand: the weight gradient has the forward's MACs, like the input gradient.
    ours, reference = conv_backward(conv, shape)
    assert ours.costs["convolution_backward"] == expected
    assert reference > expected.macs


# --------------------------------------------------------------------------------------
# Attention backward
# --------------------------------------------------------------------------------------

# q: (B=2, H=2, L=5, E=8), k: (2, 2, S=7, 8), v: (2, 2, 7, Ev=4). Per attended pair and
# head, the backward of a fused kernel costs 3E + 2Ev = 24 + 8 = 32 MACs.
Q, K, V = (2, 2, 5, 8), (2, 2, 7, 8), (2, 2, 7, 4)
HEADS = 2 * 2
DENSE = HEADS * 5 * 7 * 32  # 4,480
# top-left causal: query i sees keys 0..i: 1 + 2 + 3 + 4 + 5 = 15 pairs per head
CAUSAL_TOP_LEFT = HEADS * 15 * 32  # 1,920


def efficient_backward_on_meta(causal: bool, value: tuple[int, ...] = V) -> tuple[CostRecorder, int]:
    """The CUDA memory-efficient kernel's backward, run on meta tensors, under both counters."""
    q, k, v = (torch.randn(*shape, device="meta") for shape in (Q, K, value))
    output, logsumexp, seed, offset = torch.ops.aten._scaled_dot_product_efficient_attention(q, k, v, None, True)
    args = (torch.empty_like(output), q, k, v, None, output, logsumexp, seed, offset, 0.0, [True, True, True, False], causal)
    func = torch.ops.aten._scaled_dot_product_efficient_attention_backward.default
    with CostRecorder() as recorder:
        func(*args)
    with FlopCounterMode(display=False) as counter:
        func(*args)
    return recorder, counter.get_total_flops() // 2


def test_efficient_attention_backward_equals_flop_counter() -> None:
    # FlopCounterMode's attention backward has the same convention as ours (recompute
    # Q K^T, then dV, dP, dQ, dK): 3E + 2Ev per pair and head.
    ours, reference = efficient_backward_on_meta(causal=False)
    assert ours.costs["_scaled_dot_product_efficient_attention_backward"] == Cost(macs=DENSE, flops=2 * DENSE)
    assert reference == DENSE


def test_efficient_attention_backward_causal_by_hand() -> None:
    # FlopCounterMode ignores the causal mask (it charges all 35 pairs): by hand.
    ours, reference = efficient_backward_on_meta(causal=True)
    assert ours.costs["_scaled_dot_product_efficient_attention_backward"].macs == CAUSAL_TOP_LEFT
    assert reference == DENSE


# The CPU flash kernel needs Ev = E: v is (2, 2, 7, 8) there, 3E + 2Ev = 40 per pair and head.
V_CPU = (2, 2, 7, 8)


def cpu_attention_backward(**kwargs: Any) -> CostRecorder:
    q, k, v = (torch.randn(*shape, requires_grad=True) for shape in (Q, K, V_CPU))
    return record_backward(F.scaled_dot_product_attention(q, k, v, **kwargs).sum())


def test_cpu_flash_attention_backward_dense_matches_flop_counter_convention() -> None:
    # FlopCounterMode has no formula for the CPU kernel; its formula for the CUDA kernel
    # with the same shapes is the reference: 4 heads x 35 pairs x 40 = 5,600.
    ours = cpu_attention_backward()
    _, reference = efficient_backward_on_meta(causal=False, value=V_CPU)
    assert reference == HEADS * 35 * 40
    assert ours.costs["_scaled_dot_product_flash_attention_for_cpu_backward"] == Cost(macs=reference, flops=2 * reference)


def test_cpu_flash_attention_backward_causal() -> None:
    # top-left causal, 15 pairs per head (as above)
    ours = cpu_attention_backward(is_causal=True)
    assert ours.costs["_scaled_dot_product_flash_attention_for_cpu_backward"].macs == HEADS * 15 * 40


def test_cpu_flash_attention_backward_square_causal() -> None:
    # L = S = 6: 6 * 7 / 2 = 21 pairs per head; 1 x 3 heads; E = Ev = 4: 3E + 2Ev = 20.
    q, k, v = (torch.randn(1, 3, 6, 4, requires_grad=True) for _ in range(3))
    ours = record_backward(F.scaled_dot_product_attention(q, k, v, is_causal=True).sum())
    assert ours.costs["_scaled_dot_product_flash_attention_for_cpu_backward"].macs == 21 * 3 * 20


def test_math_attention_backward_runs_as_bmm() -> None:
    # Dropout sends the CPU to the math backend: the backward's products are bmm's,
    # 2 x the forward's (no recomputation): dV = P^T dO, dP = dO V^T (Ev each),
    # dQ = dS K, dK = dS^T Q (E each): per pair and head 2 * (8 + 8) = 32 -> 35 * 32 * 4.
    ours = cpu_attention_backward(dropout_p=0.5)
    assert "_scaled_dot_product_flash_attention_for_cpu_backward" not in ours.costs
    assert ours.costs["bmm"].macs == 35 * 32 * HEADS


def cost_of(func: OpOverload, *args: Any, out: Any = None, **kwargs: Any) -> Cost | None:
    """Ask the cost model directly (kernels that only exist on CUDA, shapes on meta)."""
    return CostModel().cost(func, args, kwargs, out)


def meta(*shape: int) -> torch.Tensor:
    return torch.empty(*shape, device="meta")


def test_low_level_flash_backward_bottom_right_causal() -> None:
    # (B, L, H, E) layout: B=1, L=3, H=2, E=Ev=8; S=5. Bottom-right causal: query i sees keys
    # 0..i + (S - L) = i + 2: 3 + 4 + 5 = 12 pairs per head; 3E + 2Ev = 40 -> 12 * 40 * 2.
    q, k, v = meta(1, 3, 2, 8), meta(1, 5, 2, 8), meta(1, 5, 2, 8)
    func = torch.ops.aten._flash_attention_backward.default
    args = (q, q, k, v, q, meta(1, 2, 3), None, None, 3, 5, 0.0)
    assert cost_of(func, *args, True, meta(2), meta(0)) == Cost(macs=12 * 40 * 2, flops=2 * 12 * 40 * 2)
    # not causal: 15 pairs per head
    assert cost_of(func, *args, False, meta(2), meta(0)) == Cost(macs=15 * 40 * 2, flops=2 * 15 * 40 * 2)
    # variable-length batches are not countable from shapes
    varlen = (q, q, k, v, q, meta(1, 2, 3), meta(2), meta(2), 3, 5, 0.0, False, meta(2), meta(0))
    assert cost_of(func, *varlen) is None


def test_low_level_efficient_backward_mask_types() -> None:
    q, k, v = meta(1, 3, 2, 8), meta(1, 5, 2, 8), meta(1, 5, 2, 8)
    func = torch.ops.aten._efficient_attention_backward.default

    def macs(mask_type: int) -> int:
        cost = cost_of(func, q, q, k, v, None, q, None, None, 3, 5, meta(1, 2, 3), 0.0, meta(2), meta(0), mask_type, False)
        assert cost is not None
        return cost.macs

    # 0: no mask, 15 pairs; 1: top-left causal 1 + 2 + 3 = 6; 2: bottom-right 3 + 4 + 5 = 12
    assert [macs(0), macs(1), macs(2)] == [15 * 80, 6 * 80, 12 * 80]


# --------------------------------------------------------------------------------------
# Vector operators of the backward pass, derived by hand
# --------------------------------------------------------------------------------------

T4 = torch.tensor([0, 3, 1, 4])
W5 = torch.rand(5)

VECTOR_CASES = [
    # activations: tagged pointwise by PyTorch, or in backward.py's list: 1 per element
    pytest.param(nn.ReLU(), [(2, 8)], "threshold_backward", Cost(flops=16), id="relu"),  # 2x8: 16 elements x 1
    pytest.param(nn.GELU(), [(2, 8)], "gelu_backward", Cost(flops=16), id="gelu"),
    pytest.param(nn.SiLU(), [(2, 8)], "silu_backward", Cost(flops=16), id="silu"),
    pytest.param(nn.Sigmoid(), [(2, 8)], "sigmoid_backward", Cost(flops=16), id="sigmoid"),
    pytest.param(nn.Tanh(), [(2, 8)], "tanh_backward", Cost(flops=16), id="tanh"),
    pytest.param(nn.Hardtanh(), [(2, 8)], "hardtanh_backward", Cost(flops=16), id="hardtanh"),
    pytest.param(nn.ReLU6(), [(2, 8)], "hardtanh_backward", Cost(flops=16), id="relu6"),
    pytest.param(nn.ELU(), [(2, 8)], "elu_backward", Cost(flops=16), id="elu"),
    pytest.param(nn.LeakyReLU(), [(2, 8)], "leaky_relu_backward", Cost(flops=16), id="leaky-relu"),
    pytest.param(nn.Hardswish(), [(2, 8)], "hardswish_backward", Cost(flops=16), id="hardswish"),
    pytest.param(nn.Hardsigmoid(), [(2, 8)], "hardsigmoid_backward", Cost(flops=16), id="hardsigmoid"),
    pytest.param(nn.Softplus(), [(2, 8)], "softplus_backward", Cost(flops=16), id="softplus"),
    pytest.param(nn.LogSigmoid(), [(2, 8)], "log_sigmoid_backward", Cost(flops=16), id="log-sigmoid"),
    pytest.param(nn.Mish(), [(2, 8)], "mish_backward", Cost(flops=16), id="mish"),
    # GLU on 2x8 -> 2x4: 1 per element of the input gradient, 16
    pytest.param(nn.GLU(), [(2, 8)], "glu_backward", Cost(flops=16), id="glu"),
    # PReLU(3) on 2x3x4: two results of 24 elements each: 48
    pytest.param(nn.PReLU(3), [(2, 3, 4)], "_prelu_kernel_backward", Cost(flops=48), id="prelu"),
    # training dropout's backward: dy * mask * scale, tagged pointwise: 16
    pytest.param(
        lambda x: torch.ops.aten.native_dropout(x, 0.5, True)[0], [(2, 8)], "native_dropout_backward", Cost(flops=16),
        id="native-dropout",
    ),
    # softmax / log-softmax on 2x8: 16 elements x 4
    pytest.param(nn.Softmax(1), [(2, 8)], "_softmax_backward_data", Cost(flops=64), id="softmax"),
    pytest.param(nn.LogSoftmax(1), [(2, 8)], "_log_softmax_backward_data", Cost(flops=64), id="log-softmax"),
    # normalisation with affine parameters, all three gradients: 13 per element
    # LayerNorm(8) on 2x3x8: 48 x 13
    pytest.param(nn.LayerNorm(8), [(2, 3, 8)], "native_layer_norm_backward", Cost(flops=624), id="layer-norm"),
    # BatchNorm2d(4) in training on 2x4x3x3: 72 x 13
    pytest.param(nn.BatchNorm2d(4), [(2, 4, 3, 3)], "native_batch_norm_backward", Cost(flops=936), id="batch-norm"),
    # without affine parameters: input gradient only, 9 per element: 72 x 9
    pytest.param(
        nn.BatchNorm2d(4, affine=False), [(2, 4, 3, 3)], "native_batch_norm_backward", Cost(flops=648),
        id="batch-norm-no-affine",
    ),
    # GroupNorm(2, 4) on 2x4x3x3: 72 x 13
    pytest.param(nn.GroupNorm(2, 4), [(2, 4, 3, 3)], "native_group_norm_backward", Cost(flops=936), id="group-norm"),
    # pooling on 1x2x4x4 -> 1x2x2x2 (8 output-gradient elements)
    # max: 1 add per output-gradient element: 8
    pytest.param(nn.MaxPool2d(2), [(1, 2, 4, 4)], "max_pool2d_with_indices_backward", Cost(flops=8), id="max-pool"),
    # average over 2x2 windows: 4 per output-gradient element: 32
    pytest.param(nn.AvgPool2d(2), [(1, 2, 4, 4)], "avg_pool2d_backward", Cost(flops=32), id="avg-pool"),
    # adaptive average (to 2x2; to 1x1 it runs as a mean): 1 per input element: 32
    pytest.param(nn.AdaptiveAvgPool2d(2), [(1, 2, 4, 4)], "_adaptive_avg_pool2d_backward", Cost(flops=32), id="adaptive-avg"),
    # adaptive max 5x5 -> 2x2: 1 per output-gradient element: 2 * 4 = 8
    pytest.param(nn.AdaptiveMaxPool2d(2), [(1, 2, 5, 5)], "adaptive_max_pool2d_backward", Cost(flops=8), id="adaptive-max"),
    # resampling 1x2x3x3 -> 1x2x6x6 (72 output-gradient elements): bilinear 7 each, nearest 1
    pytest.param(
        nn.Upsample(scale_factor=2, mode="bilinear"), [(1, 2, 3, 3)], "upsample_bilinear2d_backward", Cost(flops=504),
        id="bilinear",
    ),
    pytest.param(nn.Upsample(scale_factor=2), [(1, 2, 3, 3)], "upsample_nearest2d_backward", Cost(flops=72), id="nearest"),
    # reflection padding 1x2x4x4 -> 1x2x6x6: 1 per incoming-gradient element: 72
    pytest.param(nn.ReflectionPad2d(1), [(1, 2, 4, 4)], "reflection_pad2d_backward", Cost(flops=72), id="reflection-pad"),
    # a slice and an index only place the gradient: 0
    pytest.param(lambda x: x[:, 1:3], [(2, 8)], "slice_backward", Cost(), id="slice"),
    pytest.param(lambda x: x[1], [(2, 8)], "select_backward", Cost(), id="select"),
    # take's backward puts with accumulation: 1 per taken element, 3
    pytest.param(lambda x: x.take(torch.tensor([1, 2, 2])), [(2, 8)], "put", Cost(flops=3), id="take"),
    # losses on 4x5 inputs (20 elements); the forward's per-element count without the +1
    pytest.param(lambda x: F.mse_loss(x, torch.zeros(4, 5)), [(4, 5)], "mse_loss_backward", Cost(flops=40), id="mse"),
    pytest.param(
        lambda x: F.smooth_l1_loss(x, torch.zeros(4, 5)), [(4, 5)], "smooth_l1_loss_backward", Cost(flops=80), id="smooth-l1"
    ),
    pytest.param(lambda x: F.huber_loss(x, torch.zeros(4, 5)), [(4, 5)], "huber_loss_backward", Cost(flops=80), id="huber"),
    pytest.param(
        lambda x: F.binary_cross_entropy(x.sigmoid(), torch.full((4, 5), 0.5)), [(4, 5)],
        "binary_cross_entropy_backward", Cost(flops=120), id="bce",  # 20 x 6
    ),
    # negative log-likelihood: 1 per target element (4), +1 with class weights (8)
    pytest.param(lambda x: F.cross_entropy(x, T4), [(4, 5)], "nll_loss_backward", Cost(flops=4), id="nll"),
    pytest.param(lambda x: F.cross_entropy(x, T4, weight=W5), [(4, 5)], "nll_loss_backward", Cost(flops=8), id="nll-weighted"),
]


@pytest.mark.parametrize(("fn", "shapes", "op", "expected"), VECTOR_CASES)
def test_vector_backward(fn: Callable[..., torch.Tensor], shapes: list[tuple[int, ...]], op: str, expected: Cost) -> None:
    inputs = [torch.randn(*shape, requires_grad=True) for shape in shapes]
    recorder = record_backward(fn(*inputs).sum())
    assert not recorder.uncounted
    assert recorder.costs[op] == expected


def test_eval_batch_norm_backward() -> None:
    # Running statistics are constants: input gradient dy * (w * rstd) 1; weight gradient 2
    # plus recomputing x^ 2; bias gradient 1 -> 6 per element; 2x4x3x3 = 72 elements.
    bn = nn.BatchNorm2d(4).eval()
    recorder = record_backward(bn(torch.randn(2, 4, 3, 3, requires_grad=True)).sum())
    assert recorder.costs["native_batch_norm_backward"] == Cost(flops=72 * 6)


def test_layer_norm_backward_parameters_only() -> None:
    # The input needs no gradient: weight gradient 2 + recompute x^ 2 + bias gradient 1 = 5
    # per element; LayerNorm(8) on 2x3x8 = 48 elements.
    recorder = record_backward(nn.LayerNorm(8)(torch.randn(2, 3, 8)).sum())
    assert recorder.costs["native_layer_norm_backward"] == Cost(flops=48 * 5)


def test_embedding_backward() -> None:
    # 2x3 indices into a 10x4 table: 6 rows of 4 accumulated = 24; with scale_grad_by_freq
    # each is also scaled: 48.
    ids = torch.tensor([[0, 1, 2], [3, 0, 5]])
    plain = record_backward(nn.Embedding(10, 4)(ids).sum())
    assert plain.costs["embedding_dense_backward"] == Cost(flops=24)
    scaled = record_backward(nn.Embedding(10, 4, scale_grad_by_freq=True)(ids).sum())
    assert scaled.costs["embedding_dense_backward"] == Cost(flops=48)


def test_embedding_bag_backward() -> None:
    # 6 indices in 2 bags, 4 features. mean: 6 * 4 = 24 accumulated; max: 2 bags * 4 = 8.
    # per-sample weights (sum mode): the weight gradient multiplies too, 48; the gradient of
    # the per-sample weights is one dot product of 4 per index: 24 MACs.
    ids, offsets = torch.tensor([0, 1, 2, 3, 0, 5]), torch.tensor([0, 3])
    mean = record_backward(nn.EmbeddingBag(10, 4)(ids, offsets).sum())
    assert mean.costs["_embedding_bag_backward"] == Cost(flops=24)
    maximum = record_backward(nn.EmbeddingBag(10, 4, mode="max")(ids, offsets).sum())
    assert maximum.costs["_embedding_bag_backward"] == Cost(flops=8)
    weights = torch.rand(6, requires_grad=True)
    weighted = record_backward(nn.EmbeddingBag(10, 4, mode="sum")(ids, offsets, per_sample_weights=weights).sum())
    assert weighted.costs["_embedding_bag_backward"] == Cost(flops=48)
    assert weighted.costs["_embedding_bag_per_sample_weights_backward"] == Cost(macs=24, flops=48)


@pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")
def test_weight_norm_backward() -> None:
    # weight_norm(Linear(3, 4)): v is 4x3 = 12 elements x 5.
    layer = nn.utils.weight_norm(nn.Linear(3, 4))
    recorder = record_backward(layer(torch.randn(2, 3)).sum())
    assert recorder.costs["_weight_norm_interface_backward"] == Cost(flops=60)


def test_kernels_of_other_devices() -> None:
    """CUDA-only backward kernels, costed from meta tensors."""
    x = meta(2, 3, 8)
    # RMS norm on 2x3x8 (48 elements) with a weight: input gradient 1 + 5 + 1 = 7, weight
    # gradient 2 -> 9 per element; input gradient only 7; weight gradient only 2 + 1.
    rms = torch.ops.aten._fused_rms_norm_backward.default
    assert cost_of(rms, x, x, [8], meta(2, 3, 1), meta(8), [True, True]) == Cost(flops=48 * 9)
    assert cost_of(rms, x, x, [8], meta(2, 3, 1), meta(8), [True, False]) == Cost(flops=48 * 7)
    assert cost_of(rms, x, x, [8], meta(2, 3, 1), meta(8), [False, True]) == Cost(flops=48 * 3)
    # cuDNN batch norm: training, all three gradients: 13 per element of 2x4x3x3
    bn = torch.ops.aten.cudnn_batch_norm_backward.default
    y, c = meta(2, 4, 3, 3), meta(4)
    assert cost_of(bn, y, y, c, c, c, c, c, 1e-5, meta(0)) == Cost(flops=72 * 13)
    # batch_norm_backward (of _batch_norm_with_update / _no_update): update = training
    new_bn = torch.ops.aten.batch_norm_backward.default
    assert cost_of(new_bn, y, y, c, c, c, c, c, True, 1e-5, [True, True, True], meta(0)) == Cost(flops=72 * 13)
    assert cost_of(new_bn, y, y, c, c, c, c, c, False, 1e-5, [True, True, True], meta(0)) == Cost(flops=72 * 6)
    # fused LSTM cell on a 2x16 state with biases: forward pointwise (13 + 8) per unit,
    # backward 2 x 21 x 32 = 1,344; GRU cell: 2 x (11 + 6) x 32 = 1,088
    state = meta(2, 16)
    lstm_cell = torch.ops.aten._thnn_fused_lstm_cell_backward_impl.default
    assert cost_of(lstm_cell, state, state, state, state, meta(2, 64), True) == Cost(flops=1_344)
    gru_cell = torch.ops.aten._thnn_fused_gru_cell_backward.default
    assert cost_of(gru_cell, state, meta(2, 80), True) == Cost(flops=1_088)


def test_cudnn_rnn_backward() -> None:
    # One-layer LSTM(8, 16) on (T=5, B=2, 8), weights w_ih 64x8, w_hh 64x16, two biases
    # (weight_stride0 = 4): forward MACs 10 * (512 + 1024) = 15,360. The data gradients cost
    # that once, the weight gradients (output_mask[3]) once more. Pointwise: 2 x 21 per
    # step, sequence and unit: 2 * 21 * 10 * 16 = 6,720.
    func = torch.ops.aten._cudnn_rnn_backward.default
    weights = [meta(64, 8), meta(64, 16), meta(64), meta(64)]
    x, h = meta(5, 2, 8), meta(1, 2, 16)

    def cost(weight_grads: bool) -> Cost | None:
        return cost_of(
            func, x, weights, 4, meta(0), h, h, meta(5, 2, 16), meta(5, 2, 16), h, h, 2, 16, 0, 1, False, 0.0, True,
            False, [], None, meta(0), [True, True, True, weight_grads],
        )

    assert cost(True) == Cost(macs=30_720, flops=2 * 30_720 + 6_720)
    assert cost(False) == Cost(macs=15_360, flops=2 * 15_360 + 6_720)


# --------------------------------------------------------------------------------------
# A wider set of layers: forward and backward fully counted
# --------------------------------------------------------------------------------------

LAYERS: list[tuple[str, Callable[..., Any], list[tuple[int, ...]]]] = [
    ("conv3d", nn.Conv3d(2, 3, 3), [(1, 2, 4, 4, 4)]),
    ("conv-transpose1d", nn.ConvTranspose1d(2, 3, 3), [(1, 2, 5)]),
    ("batch-norm1d", nn.BatchNorm1d(4), [(3, 4)]),
    ("instance-norm", nn.InstanceNorm2d(4, affine=True), [(2, 4, 3, 3)]),
    ("rms-norm", nn.RMSNorm(5), [(2, 4, 5)]),
    ("max-pool3d", nn.MaxPool3d(2), [(1, 2, 4, 4, 4)]),
    ("avg-pool3d", nn.AvgPool3d(2), [(1, 2, 4, 4, 4)]),
    ("avg-pool1d", nn.AvgPool1d(2), [(1, 2, 8)]),
    ("adaptive-avg3d", nn.AdaptiveAvgPool3d(2), [(1, 2, 5, 5, 5)]),
    ("bicubic", nn.Upsample(scale_factor=2, mode="bicubic"), [(1, 2, 3, 3)]),
    ("trilinear", nn.Upsample(scale_factor=2, mode="trilinear"), [(1, 2, 2, 2, 2)]),
    ("nearest-exact", lambda x: F.interpolate(x, scale_factor=2, mode="nearest-exact"), [(1, 2, 3, 3)]),
    ("replication-pad", nn.ReplicationPad3d(1), [(1, 2, 2, 2, 2)]),
    ("circular-pad", lambda x: F.pad(x, (1, 1, 1, 1), mode="circular"), [(1, 2, 3, 3)]),
    ("unfold-fold", lambda x: F.fold(F.unfold(x, 2), (4, 4), 2), [(1, 2, 4, 4)]),
    ("tensor-unfold", lambda x: x.unfold(1, 3, 1), [(2, 6)]),
    ("grid-sample", lambda x, g: F.grid_sample(x, g, align_corners=False), [(1, 2, 4, 4), (1, 3, 3, 2)]),
    ("bilinear-layer", nn.Bilinear(3, 4, 5), [(2, 3), (2, 4)]),
    ("lstm-cell", nn.LSTMCell(3, 4), [(2, 3)]),
    ("bidirectional-lstm", nn.LSTM(3, 4, bidirectional=True, batch_first=True), [(2, 5, 3)]),
    ("rrelu", nn.RReLU(), [(2, 8)]),
    ("shrink", lambda x: F.hardshrink(x) + F.softshrink(x), [(2, 8)]),
    ("losses", lambda x: F.l1_loss(x, torch.zeros(4, 5)) + F.binary_cross_entropy_with_logits(x, torch.rand(4, 5))
     + F.kl_div(F.log_softmax(x, 1), torch.rand(4, 5), reduction="batchmean")
     + F.cross_entropy(x, torch.rand(4, 5).softmax(1), label_smoothing=0.1), [(4, 5)]),
    ("nll2d", lambda x: F.cross_entropy(x, torch.zeros(2, 3, 3, dtype=torch.long)), [(2, 4, 3, 3)]),
    ("indexing", lambda x: x[[0, 1]].sum() + x.gather(1, torch.tensor([[0], [1]])).sum() + x.masked_select(x > 0).sum()
     + x.index_select(1, torch.tensor([0, 2])).sum() + x.diagonal().sum() + x.cumprod(1).sum() + x.sort(1)[0].sum(), [(2, 5)]),
    ("attention-with-weights", nn.MultiheadAttention(8, 2, dropout=0.1, batch_first=True), [(2, 4, 8)] * 3),
]


@pytest.mark.parametrize(("fn", "shapes"), [pytest.param(fn, shapes, id=name) for name, fn, shapes in LAYERS])
def test_layer_forward_and_backward_fully_counted(fn: Callable[..., Any], shapes: list[tuple[int, ...]]) -> None:
    torch.manual_seed(0)
    if isinstance(fn, nn.Module):
        fn.train()
    inputs = [torch.randn(*shape, requires_grad=True) for shape in shapes]
    with CostRecorder() as forward:
        loss = scalar(fn(*inputs))
    backward = record_backward(loss)
    assert dict(forward.uncounted) == {}
    assert dict(backward.uncounted) == {}
