"""A small mixed-type classification frame for the training tests: numeric and categorical columns
with missing values, and a label that depends on both."""

import numpy as np
import pandas as pd


def mixed_frame(n: int, seed: int = 0, const: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """x1, x2, x3 (numeric), color and city (categorical, some missing); ``const``: a constant column too."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    x3 = rng.integers(0, 100, n)
    color = rng.choice(["red", "green", "blue"], n).astype(object)
    city = rng.choice(["a", "b", "c", "d"], n).astype(object)
    color[::37] = None
    city[::41] = np.nan
    logit = 2.0 * x1 - 1.5 * x2 + 2.0 * (color == "red") + 0.03 * (x3 - 50)
    y = (logit + 0.5 * rng.logistic(size=n) > 0).astype(int)
    columns = {"x1": x1, "x2": x2, "x3": x3, **({"const": 1.0} if const else {}), "color": color, "city": city}
    return pd.DataFrame(columns), y
