"""The polynomial-derivative experiment: f(x) = -2x^3 - 6x^2 + 18x and its derivative as building blocks.

- ``Polynomial``: any polynomial by its coefficients (ascending powers), with f, f', f''.
  The default is f(x) = -2x^3 - 6x^2 + 18x, so f'(x) = -6x^2 - 12x + 18 and f''(x) = -12x - 12.
- ``PolyActivation`` (torch): y = f'(clamp(x, -r, r)). f' is a downward parabola, unbounded below,
  so an unclamped input of 1e6 would give -6e12 and quickly inf; clamping to [-r, r] (default r = 3)
  bounds the output to [min f' on [-r, r], max f'] (for the default: [-72, 24]) and its gradient
  to |f''| <= 12r + 12 inside the range, 0 outside (saturated, like hard-tanh).
- ``PolyAdam`` (torch.optim.Optimizer): Adam whose step for each parameter tensor p is multiplied by
  scale = a + (b - a) / (1 + |f'(clamp(mean p, -r, r))| / c), which lies in [a, b]: a steep slope of
  the polynomial at the parameter's mean shrinks the step towards a, a flat one lets it grow to b.
  With a = b = 1 it is exactly torch.optim.Adam.
- ``adjust_scores`` (numpy): context-aware recommendation scores. A hunger level h in [0, 10] is read
  as fullness x = 1 - h/10; the marginal utility f'(x) (the derivative of the satisfaction curve f)
  gives the weight m(h) = clip(f'(1 - h/10) / f'(0), 0, 1), and
  adjusted = score * (1 + strength * affinity * m(h)).
  For the default f, m(0) = 0 (sated: nothing changes), m(5) = 10.5/18, m(10) = 1 (starving: food
  items, affinity 1, get up to (1 + strength) times their score). m grows with h because f' falls on [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from pipelines.errors import DataError

DEFAULT_COEFFICIENTS = (0.0, 18.0, -6.0, -2.0)  # f(x) = 0 + 18x - 6x^2 - 2x^3
DEFAULT_CLAMP = 3.0


class PolyError(DataError, ValueError):
    """A polynomial, a clamp range or a scale bound that cannot work."""


@dataclass(frozen=True)
class Polynomial:
    """f(x) = sum_k coefficients[k] * x**k (ascending powers)."""

    coefficients: tuple[float, ...] = DEFAULT_COEFFICIENTS

    def __post_init__(self) -> None:
        coeffs = tuple(float(c) for c in self.coefficients)
        if len(coeffs) < 2 or not all(np.isfinite(coeffs)):
            raise PolyError(
                f"polynomial coefficients must be at least 2 finite numbers (ascending powers), got {self.coefficients!r}"
            )
        object.__setattr__(self, "coefficients", coeffs)

    @property
    def derivative_coefficients(self) -> tuple[float, ...]:
        return tuple(k * c for k, c in enumerate(self.coefficients) if k > 0)

    @property
    def second_derivative_coefficients(self) -> tuple[float, ...]:
        d = self.derivative_coefficients
        return tuple(k * c for k, c in enumerate(d) if k > 0) or (0.0,)

    def f(self, x):
        return _horner(self.coefficients, x)

    def df(self, x):
        return _horner(self.derivative_coefficients, x)

    def d2f(self, x):
        return _horner(self.second_derivative_coefficients, x)


def _horner(coeffs: Sequence[float], x):
    """Polynomial value by Horner's rule; works on floats, numpy arrays and torch tensors alike."""
    out = x * 0 + coeffs[-1]
    for c in reversed(coeffs[:-1]):
        out = out * x + c
    return out


def _check_clamp(clamp: float) -> float:
    clamp = float(clamp)
    if not np.isfinite(clamp) or clamp <= 0:
        raise PolyError(f"clamp must be a positive finite number (inputs are clipped to [-clamp, clamp]), got {clamp}")
    return clamp


def adjust_scores(
    scores,
    hunger: float,
    affinity=None,
    strength: float = 0.5,
    poly: Polynomial | None = None,
) -> np.ndarray:
    """Recommendation scores adjusted for a hunger level 0..10 (formula in the module docstring).

    ``affinity`` (per item, in [0, 1]; default all 1) says how much an item answers the context,
    e.g. 1 for food, 0 for a jacket.
    """
    poly = poly or Polynomial()
    s = np.asarray(scores, dtype=float)
    if not 0 <= float(hunger) <= 10:
        raise PolyError(f"hunger must be between 0 (sated) and 10 (starving), got {hunger}")
    if strength < 0:
        raise PolyError(f"strength must be >= 0, got {strength}")
    a = np.ones_like(s) if affinity is None else np.asarray(affinity, dtype=float)
    if a.shape != s.shape:
        raise PolyError(f"affinity has shape {a.shape} but scores have shape {s.shape}; give one affinity per item")
    return s * (1.0 + strength * a * hunger_weight(hunger, poly))


def hunger_weight(hunger: float, poly: Polynomial | None = None) -> float:
    """m(h) = clip(f'(1 - h/10) / f'(0), 0, 1)."""
    poly = poly or Polynomial()
    base = poly.df(0.0)
    if base == 0:
        raise PolyError("f'(0) is 0, so the hunger weight f'(1 - h/10) / f'(0) is undefined; pick another polynomial")
    return float(np.clip(poly.df(1.0 - float(hunger) / 10.0) / base, 0.0, 1.0))


def poly_adam_scale(grad_slope: float, c: float, low: float, high: float) -> float:
    """scale = low + (high - low) / (1 + |slope| / c), in [low, high]."""
    return low + (high - low) / (1.0 + abs(grad_slope) / c)


# --- torch parts, built on first use so that importing this module does not import torch ---------------


def __getattr__(name: str):
    if name in ("PolyActivation", "PolyAdam"):
        return _torch_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _torch_classes() -> dict:
    import torch
    from torch import nn

    class PolyActivation(nn.Module):
        """y = f'(clamp(x, -clamp, clamp)) (see the module docstring for why the clamp)."""

        def __init__(self, coefficients: Sequence[float] = DEFAULT_COEFFICIENTS, clamp: float = DEFAULT_CLAMP):
            super().__init__()
            self.poly = Polynomial(tuple(coefficients))
            self.clamp = _check_clamp(clamp)

        def forward(self, x):
            return self.poly.df(torch.clamp(x, -self.clamp, self.clamp))

        def extra_repr(self) -> str:
            return f"coefficients={self.poly.coefficients}, clamp={self.clamp}"

    class PolyAdam(torch.optim.Optimizer):
        """Adam with each tensor's step scaled by low + (high - low) / (1 + |f'(mean p)| / c) (module docstring)."""

        def __init__(
            self,
            params,
            lr: float = 1e-3,
            betas: tuple[float, float] = (0.9, 0.999),
            eps: float = 1e-8,
            coefficients: Sequence[float] = DEFAULT_COEFFICIENTS,
            clamp: float = DEFAULT_CLAMP,
            c: float = 10.0,
            bounds: tuple[float, float] = (0.1, 1.0),
        ):
            low, high = (float(b) for b in bounds)
            if not 0 <= low <= high:
                raise PolyError(f"PolyAdam bounds must satisfy 0 <= low <= high, got {bounds}")
            if c <= 0:
                raise PolyError(f"PolyAdam c must be > 0, got {c}")
            if lr <= 0:
                raise PolyError(f"PolyAdam lr must be > 0, got {lr}")
            super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})
            self.poly = Polynomial(tuple(coefficients))
            self.clamp = _check_clamp(clamp)
            self.c, self.low, self.high = float(c), low, high
            self.last_scales: list[float] = []

        @torch.no_grad()
        def step(self, closure=None):
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            self.last_scales = []
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if not state:
                        state["step"] = 0
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                    state["step"] += 1
                    m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
                    m.lerp_(p.grad, 1 - beta1)
                    v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                    mean = float(p.mean().clamp(-self.clamp, self.clamp))
                    scale = poly_adam_scale(self.poly.df(mean), self.c, self.low, self.high)
                    self.last_scales.append(scale)
                    bias1, bias2 = 1 - beta1**t, 1 - beta2**t
                    denom = (v.sqrt() / (bias2**0.5)).add_(group["eps"])
                    p.addcdiv_(m, denom, value=-group["lr"] * scale / bias1)
            return loss

    return {"PolyActivation": PolyActivation, "PolyAdam": PolyAdam}
