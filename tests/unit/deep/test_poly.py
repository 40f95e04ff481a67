import subprocess
import sys

import numpy as np
import pytest

from pipelines.deep import poly
from pipelines.deep.poly import PolyError, Polynomial, adjust_scores, hunger_weight, poly_adam_scale


def test_f_and_derivatives_by_hand():
    p = Polynomial()
    # f(x) = -2x^3 - 6x^2 + 18x
    assert p.f(0.0) == 0.0
    assert p.f(1.0) == -2 - 6 + 18
    assert p.f(-1.0) == 2 - 6 - 18
    assert p.f(2.0) == -16 - 24 + 36
    # f'(x) = -6x^2 - 12x + 18: roots at 1 and -3, peak 24 at -1
    assert p.df(0.0) == 18
    assert p.df(1.0) == 0
    assert p.df(-3.0) == 0
    assert p.df(-1.0) == 24
    assert p.df(3.0) == -72
    # f''(x) = -12x - 12
    assert p.d2f(0.0) == -12
    assert p.d2f(-1.0) == 0
    np.testing.assert_allclose(p.df(np.array([0.0, 2.0])), [18, -30])


def test_configurable_polynomial_and_bad_coefficients():
    p = Polynomial((1.0, 0.0, 3.0))  # 1 + 3x^2
    assert p.f(2.0) == 13 and p.df(2.0) == 12 and p.d2f(5.0) == 6
    with pytest.raises(PolyError, match="at least 2 finite"):
        Polynomial((1.0,))
    with pytest.raises(PolyError, match="finite"):
        Polynomial((1.0, float("nan")))


def test_importing_poly_does_not_import_torch():
    code = (
        "import sys, pipelines.deep, pipelines.deep.poly as p; p.adjust_scores([1.0], 5); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_activation_gradient_is_second_derivative():
    torch = pytest.importorskip("torch")
    act = poly.PolyActivation()
    x = torch.linspace(-2.9, 2.9, 41, dtype=torch.float64, requires_grad=True)
    y = act(x)
    np.testing.assert_allclose(y.detach().numpy(), Polynomial().df(x.detach().numpy()), rtol=1e-12)
    (grad,) = torch.autograd.grad(y.sum(), x)
    np.testing.assert_allclose(grad.numpy(), -12 * x.detach().numpy() - 12, rtol=1e-10, atol=1e-10)


def test_activation_overflow_guard():
    torch = pytest.importorskip("torch")
    act = poly.PolyActivation(clamp=3.0)
    x = torch.tensor([-1e30, -1e6, 1e6, 1e30, float("inf"), -float("inf")], requires_grad=True)
    y = act(x)
    assert torch.isfinite(y).all()
    assert y.min() >= -72 and y.max() <= 24
    y.sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad == 0).all()  # saturated outside the range
    with pytest.raises(PolyError, match="clamp"):
        poly.PolyActivation(clamp=0)


def _train_steps(opt_factory, steps=5):
    import torch

    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 3))
    opt = opt_factory([w])
    target = torch.ones(4, 3)
    for _ in range(steps):
        opt.zero_grad()
        ((w - target) ** 2).sum().backward()
        opt.step()
    return w.detach().clone(), opt


def test_poly_adam_equals_adam_when_scale_is_one():
    torch = pytest.importorskip("torch")
    w_adam, _ = _train_steps(lambda p: torch.optim.Adam(p, lr=0.05))
    w_poly, opt = _train_steps(lambda p: poly.PolyAdam(p, lr=0.05, bounds=(1.0, 1.0)))
    assert opt.last_scales == [1.0]
    torch.testing.assert_close(w_poly, w_adam, rtol=0, atol=1e-7)


def test_poly_adam_step_is_bounded_and_scaled():
    torch = pytest.importorskip("torch")
    lr, low, high = 0.1, 0.2, 0.8
    # one step: Adam moves each weight by lr * sign(grad) (first step), PolyAdam by lr * scale
    torch.manual_seed(1)
    w0 = torch.randn(5)
    w = torch.nn.Parameter(w0.clone())
    opt = poly.PolyAdam([w], lr=lr, bounds=(low, high), c=10.0)
    (w**2).sum().backward()
    opt.step()
    (scale,) = opt.last_scales
    assert low <= scale <= high
    expected = poly_adam_scale(Polynomial().df(float(w0.mean())), 10.0, low, high)
    assert scale == pytest.approx(expected)
    step = (w.detach() - w0).abs()
    torch.testing.assert_close(step, torch.full_like(step, lr * scale), rtol=1e-4, atol=1e-6)
    # the scale always stays inside its bounds, even for huge parameter means (clamped)
    for mean in (-1e9, -3.0, -1.0, 0.0, 1.0, 1e9):
        s = poly_adam_scale(Polynomial().df(float(np.clip(mean, -3, 3))), 10.0, low, high)
        assert low <= s <= high
    with pytest.raises(PolyError, match="bounds"):
        poly.PolyAdam([w], bounds=(1.0, 0.5))


def test_hunger_weight_and_scores_by_hand():
    assert hunger_weight(0) == 0.0  # f'(1) = 0
    assert hunger_weight(10) == 1.0  # f'(0) / f'(0)
    assert hunger_weight(5) == pytest.approx(10.5 / 18)  # f'(0.5) = -1.5 - 6 + 18
    out = adjust_scores([1.0, 2.0, 0.5], hunger=5, affinity=[1.0, 0.0, 0.5], strength=0.6)
    m = 10.5 / 18
    np.testing.assert_allclose(out, [1.0 * (1 + 0.6 * m), 2.0, 0.5 * (1 + 0.3 * m)])


def test_scores_monotonic_in_hunger():
    scores = np.array([0.3, 0.9, 0.1])
    adjusted = [adjust_scores(scores, h) for h in np.linspace(0, 10, 21)]
    for lo, hi in zip(adjusted, adjusted[1:], strict=False):
        assert (hi >= lo).all()
    np.testing.assert_allclose(adjusted[0], scores)  # sated: unchanged
    # ranking among items with the same affinity never changes
    assert all((np.argsort(a) == np.argsort(scores)).all() for a in adjusted)


def test_score_errors():
    with pytest.raises(PolyError, match="hunger"):
        adjust_scores([1.0], hunger=11)
    with pytest.raises(PolyError, match="affinity"):
        adjust_scores([1.0, 2.0], hunger=3, affinity=[1.0])
    with pytest.raises(PolyError, match="f'\\(0\\)"):
        hunger_weight(5, Polynomial((1.0, 0.0, 1.0)))
