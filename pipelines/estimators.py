"""scikit-learn estimators whose constructor parameters are declared once, as annotated fields.

scikit-learn's convention is an ``__init__`` that takes every hyperparameter as a keyword and
stores it unchanged under the same name (``get_params``, ``set_params`` and ``clone`` read that
signature). ``@hyperparameters`` writes this ``__init__`` from the class's annotated fields (a
dataclass), so a parameter is named once, not three times. Equality stays identity and ``repr``
stays BaseEstimator's. A subclass's fields follow its base's; decorate both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(eq_default=False)
def hyperparameters(cls: type[T]) -> type[T]:
    """The class with a dataclass ``__init__`` over its annotated fields (no ``__eq__``, no ``__repr__``)."""
    return dataclass(eq=False, repr=False)(cls)
