"""The only trainable module of SoftCoT: assistant hidden size -> LLM embedding size.

    proj = Projection(d_in=2048, d_out=4096)            # Linear with bias, as in the paper
    thoughts_llm = proj(thoughts)                        # [B, N, 2048] -> [B, N, 4096]

Weights (and so the optimizer state) always live in fp32, whatever the LMs' dtype: at lr 2e-5
most bf16 Adam updates would round away (reference-code trap 1). The caller casts the output
to the LLM's embedding dtype in one place (`FrozenLLM.splice`).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from softcot.errors import CheckpointError


class Projection(nn.Module):
    """Linear (default) or 2-layer MLP, optionally followed by a norm.

    norm="layernorm": a trainable LayerNorm on the output.
    norm="match":     RMS-normalise each output vector and scale it by `target_rms` (the LLM's
                      mean embedding RMS, a buffer) times a trainable gain (init 1), so the
                      thoughts start with the same scale as real token embeddings.
    """

    def __init__(
        self,
        d_in: int,
        d_out: int,
        *,
        kind: str = "linear",
        hidden: int = 0,
        bias: bool = True,
        norm: str = "none",
        target_rms: float = 1.0,
    ) -> None:
        super().__init__()
        self.d_in, self.d_out, self.kind, self.norm_kind = d_in, d_out, kind, norm
        if kind == "linear":
            self.net = nn.Linear(d_in, d_out, bias=bias)
        elif kind == "mlp":
            hidden = hidden or d_out
            self.net = nn.Sequential(nn.Linear(d_in, hidden, bias=bias), nn.GELU(), nn.Linear(hidden, d_out, bias=bias))
        else:
            raise ValueError(f"projection kind must be 'linear' or 'mlp', got {kind!r}")
        if norm == "layernorm":
            self.norm = nn.LayerNorm(d_out)
        elif norm == "match":
            self.register_buffer("target_rms", torch.tensor(float(target_rms)))
            self.gain = nn.Parameter(torch.ones(()))
        elif norm != "none":
            raise ValueError(f"projection norm must be none|layernorm|match, got {norm!r}")
        self.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, N, d_in] (any dtype) -> [B, N, d_out] fp32
        y = self.net(x.float())
        if self.norm_kind == "layernorm":
            y = self.norm(y)
        elif self.norm_kind == "match":
            y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + 1e-6) * self.target_rms * self.gain
        return y

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def load_reference_projection(path: str | Path, d_in: int, d_out: int) -> dict[str, torch.Tensor]:
    """Read the paper's `projection.bin` (a torch state dict holding one Linear's weight and bias,
    possibly under a prefix) and return it as this module's `net.weight` / `net.bias`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: reference projection file not found")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is one message
        raise CheckpointError(f"{path}: not a torch state dict ({type(e).__name__}: {e})") from None
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: expected a state dict, got {type(sd).__name__}")
    weights = [k for k in sd if k.endswith("weight")]
    biases = [k for k in sd if k.endswith("bias")]
    if len(weights) != 1 or len(biases) > 1:
        raise CheckpointError(f"{path}: expected one Linear (a weight and a bias), found keys {sorted(sd)}")
    w = sd[weights[0]].float()
    if tuple(w.shape) != (d_out, d_in):
        raise CheckpointError(
            f"{path}: weight has shape {tuple(w.shape)}, expected ({d_out}, {d_in}) for this assistant/LLM pair"
        )
    out = {"net.weight": w}
    if biases:
        out["net.bias"] = sd[biases[0]].float()
    return out
