"""Gold data for training: every gold partition of a dataset up to a logical date.

The split column decides what is what: ``train`` and ``valid`` rows are used for
cross-validation and the final fit, ``test`` rows only for the held-out score. A sample (the
Param ``sample_rows``) is drawn from the train rows only, after the split: the held-out score is
always on every test row (``pipelines.training.refit`` refits the selected model on every train row).
The sample is stratified by label, except that a rare class keeps up to an even share of the sample
(``sample_counts``): with 1 % positives a 10,000-row sample would hold 100 of them, too few to tell
good models apart; it holds every positive instead, and the refit on every row restores the class shares.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from pipelines.constants import GOLD, LABEL, SPLIT, TEST
from pipelines.errors import DataError
from pipelines.lake import Lake
from pipelines.training.algorithms import FeatureSpec


class TrainingDataError(DataError, ValueError):
    """Gold data that no model can be trained on (no label, one class, unknown column type)."""


@dataclass
class TrainingData:
    dataset: str
    ds: str
    features: FeatureSpec
    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series
    content_hashes: dict[str, str]
    classes: tuple[str, ...] | None = None  # multi-class: the class of each code 0..k-1 of y; binary: None
    train_rows_all: int | None = None  # train rows before a sample (None: no sample cut them)

    @property
    def sampled(self) -> bool:
        """Whether a sample cut the train rows (the models are judged on fewer rows than gold has)."""
        return self.train_rows_all is not None and self.train_rows_all > len(self.y_train)

    @property
    def columns(self) -> list[str]:
        return [*self.features.numeric, *self.features.categorical]

    @property
    def multiclass(self) -> bool:
        return self.classes is not None and len(self.classes) > 2

    def summary(self) -> dict:
        share = {"train_positive_rate": float(self.y_train.mean())}
        if self.classes is not None:
            counts = self.y_train.value_counts().sort_index()
            share = {"train_class_counts": {self.classes[int(c)]: int(n) for c, n in counts.items()}}
        return {
            "dataset": self.dataset,
            "ds": self.ds,
            "train_rows": len(self.X_train),
            **({"train_rows_before_sample": self.train_rows_all} if self.sampled else {}),
            "test_rows": len(self.X_test),
            **share,
            "features": self.columns,
            "partitions": sorted(self.content_hashes),
        }


def load_training_data(
    lake: Lake, dataset: str, ds: str, sample: int | None = None, seed: int = 0, sample_test: bool = False
) -> TrainingData:
    """Gold partitions of ``dataset`` with ds <= ``ds``; ``sample`` keeps at most that many train rows
    (``sample_counts`` per class) and every test row; with ``sample_test`` at most that many rows of both,
    stratified by label (a reference sample, e.g. monitoring's: it keeps the class shares)."""
    dates = [d for d in lake.list_partitions(GOLD, dataset) if d <= ds]
    if not dates:
        raise TrainingDataError(
            f"no gold partitions for dataset {dataset!r} up to {ds} under {lake.uri(GOLD, dataset)}; "
            "run the features DAG for those dates first"
        )
    manifests = {d: lake.read_manifest(GOLD, dataset, d) for d in dates}
    frame = pa.concat_tables([lake.read_partition(GOLD, dataset, d) for d in dates], promote_options="permissive")
    frame = frame.to_pandas()
    latest = manifests[dates[-1]]
    features = FeatureSpec(numeric=tuple(latest.get("numeric", [])), categorical=tuple(latest.get("categorical", [])))
    kind = _label_kind(latest, frame)
    check_gold(frame, features)
    classes = None
    if kind == "multiclass":  # codes 0..k-1 in sorted class order, over every partition read
        frame = frame[frame[LABEL].notna()]
        classes = tuple(sorted(frame[LABEL].astype(str).unique()))
        frame = frame.assign(**{LABEL: frame[LABEL].astype(str).map({c: i for i, c in enumerate(classes)})})
    test = frame[SPLIT] == TEST
    pool = frame if sample_test else frame[~test]  # split first: a sample never cuts the test rows
    train_rows_all = None
    if sample and len(pool) > sample:
        if sample_test:
            kept = pool.groupby(LABEL, group_keys=False).sample(frac=sample / len(pool), random_state=seed)
        else:
            counts = sample_counts(pool[LABEL].value_counts().to_dict(), sample)
            kept = pd.concat([part.sample(n=counts[k], random_state=seed) for k, part in pool.groupby(LABEL)])
        train_rows_all = int((~test).sum())
        frame = frame[frame.index.isin(kept.index) | (test & (not sample_test))]  # in gold's row order
        test = frame[SPLIT] == TEST
    columns = [*features.numeric, *features.categorical]
    return TrainingData(
        dataset=dataset,
        ds=ds,
        features=features,
        X_train=frame.loc[~test, columns].reset_index(drop=True),
        y_train=frame.loc[~test, LABEL].astype(int).reset_index(drop=True),
        X_test=frame.loc[test, columns].reset_index(drop=True),
        y_test=frame.loc[test, LABEL].astype(int).reset_index(drop=True),
        content_hashes={d: m["content_hash"] for d, m in manifests.items()},
        classes=classes,
        train_rows_all=train_rows_all,
    )


def sample_counts(counts: dict, sample: int) -> dict:
    """Rows to keep per class for a ``sample`` of the rows counted in ``counts`` (class -> rows): each
    class its share, but at least ``sample // (2 * classes)`` rows (all of them when it has fewer);
    the larger classes give up what that costs, in proportion to their size."""
    floor, total = sample // (2 * len(counts)), sum(counts.values())
    keep = {k: min(n, max(round(sample * n / total), floor)) for k, n in counts.items()}
    excess = sum(keep.values()) - sample
    big = {k: keep[k] - floor for k in keep if keep[k] > floor}
    room = sum(big.values())
    for k, spare in big.items():
        keep[k] -= min(spare, -(-excess * spare // room)) if excess > 0 else 0
    return keep


def _label_kind(manifest: dict, frame: pd.DataFrame) -> str:
    """binary or multiclass; a numeric (regression) label is refused, naming its type."""
    kind = manifest.get("label_kind") or "binary"
    if kind == "numeric":
        source = (manifest.get("label_source") or {}).get("column") or LABEL
        dtype = frame[LABEL].dtype if LABEL in frame.columns else "unknown"
        raise TrainingDataError(
            f"label {source!r} is numeric ({dtype}, a regression target: its contract's gold.label has no "
            "`positive` class): the training DAG trains classifiers. Give gold.label a `positive: <value>` for a "
            "binary label or `multiclass: true` for classes, or forecast it with the forecasting DAG"
        )
    if kind not in ("binary", "multiclass"):
        raise TrainingDataError(f"gold label_kind {kind!r} is not one the training DAG knows (binary, multiclass)")
    return kind


def check_gold(frame: pd.DataFrame, features: FeatureSpec) -> None:
    """Refuse gold that cannot be trained on, naming the column at fault."""
    from pipelines.training.algorithms import check_features

    if LABEL not in frame.columns:
        raise TrainingDataError(f"gold has no label column {LABEL!r}; columns: {sorted(frame.columns)}")
    if SPLIT not in frame.columns:
        raise TrainingDataError(f"gold has no {SPLIT!r} column; rerun the features DAG")
    classes = sorted(frame[LABEL].dropna().unique().tolist())
    if len(classes) < 2:
        raise TrainingDataError(f"label column {LABEL!r} holds a single class {classes}: nothing to learn")
    if not features.numeric and not features.categorical:
        raise TrainingDataError("the gold manifest lists no features")
    try:
        check_features(frame, features)
    except ValueError as exc:
        raise TrainingDataError(str(exc)) from None
