"""Sentiment data: tokenizers, the reviews' positive rule, gold of the reviews or of a user's text dataset.

Tokenizers (``tokenize``): NFC-normalised, lower-cased. ``ko_en`` (the reviews' one) keeps runs of
Hangul syllables, Latin words (with an inner apostrophe: don't) and numbers, dropping punctuation;
each Hangul word also yields its character bigrams (배송이 -> 배송, 송이: Korean words carry
particles and endings, so subword units are shared across inflections without a morphological
analyser). ``plain`` keeps every Unicode word (any script), for text that is neither Korean nor
English; ``pick_tokenizer`` chooses ``ko_en`` when at least 90% of the letters are Hangul or Latin.

A user's text dataset (``dataset add NAME --kind text``) reaches gold with its text and label
columns (the entry's ``columns: {text: .., label: ..}``); classes are the label's values, sorted,
the positive class last for a binary label.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

from pipelines.errors import DataError

TEXT = "text"
POSITIVE, NEGATIVE = "positive", "negative"
TOKENIZERS = ("ko_en", "plain")
_TOKEN_RE = re.compile(r"[\uac00-\ud7a3]+|[a-z]+(?:'[a-z]+)?|[0-9]+")
_HANGUL_RE = re.compile(r"^[\uac00-\ud7a3]+$")
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_KO_EN_LETTER = re.compile(r"[\uac00-\ud7a3a-z]")


class TextDataError(DataError, ValueError):
    """Text inputs or gold rows that the sentiment models cannot use."""


def _normal(text) -> str | None:
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    return unicodedata.normalize("NFC", str(text)).lower().replace("\u2019", "'")


def tokenize(text, tokenizer: str = "ko_en") -> list[str]:
    """Words plus, for ``ko_en``, the character bigrams of each Hangul word (module docstring)."""
    text = _normal(text)
    if text is None:
        return []
    if tokenizer == "plain":
        return _WORD_RE.findall(text)
    out = []
    for word in _TOKEN_RE.findall(text):
        out.append(word)
        if len(word) > 2 and _HANGUL_RE.match(word):
            out.extend(word[i : i + 2] for i in range(len(word) - 1))
    return out


def pick_tokenizer(texts, share: float = 0.9) -> str:
    """``ko_en`` when at least ``share`` of the letters in ``texts`` are Hangul syllables or a-z, else ``plain``."""
    letters = known = 0
    for t in list(texts)[:5000]:
        t = _normal(t) or ""
        letters += sum(ch.isalpha() for ch in t)
        known += len(_KO_EN_LETTER.findall(t))
    return "ko_en" if letters == 0 or known >= share * letters else "plain"


def positive_label(rating, min_positive: int = 4) -> np.ndarray:
    """1 when the rating is ``min_positive`` or more (4 or 5 by default), else 0."""
    r = pd.to_numeric(pd.Series(np.asarray(rating)), errors="coerce")
    if r.isna().any():
        raise TextDataError(f"{int(r.isna().sum())} rating(s) are missing or not numbers; ratings must be 1..5")
    return (r.to_numpy() >= min_positive).astype(np.int64)


def review_text(title, body) -> pd.Series:
    """Title and review joined with '. ' (either may be missing)."""
    t = pd.Series(title, dtype="object").fillna("").astype(str).str.strip()
    b = pd.Series(body, dtype="object").fillna("").astype(str).str.strip()
    return (t + ". " + b).str.strip(". ").where((t != "") | (b != ""), "")


def texts(X) -> list[str]:
    """Raw texts from a ``text`` column, a list of strings, or one string."""
    if isinstance(X, pd.DataFrame):
        if TEXT not in X.columns:
            raise TextDataError(f"input needs a column {TEXT!r} with the raw text; it has {list(X.columns)}")
        X = X[TEXT]
    if isinstance(X, str):
        X = [X]
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in X]


def class_ids(y) -> np.ndarray:
    """Labels as 0..k-1 with at least two classes present."""
    y = np.asarray(y).astype(np.int64)
    values = np.unique(y)
    if len(values) < 2:
        raise TextDataError(f"labels hold {len(values)} class(es) {values.tolist()}; a classifier needs two or more")
    if values.min() < 0:
        raise TextDataError(f"labels must be class ids 0..k-1, got {values[:5].tolist()}")
    return y


def _gold(lake, dataset: str, ds: str) -> pd.DataFrame:
    import pyarrow as pa

    from pipelines.constants import GOLD

    dates = [d for d in lake.list_partitions(GOLD, dataset) if d <= ds]
    if not dates:
        raise TextDataError(
            f"no gold partitions for {dataset!r} up to {ds} under {lake.uri(GOLD, dataset)}; "
            "run the features DAG (or `python -m pipelines ingest`) for those dates first"
        )
    frame = pa.concat_tables([lake.read_partition(GOLD, dataset, d) for d in dates], promote_options="permissive")
    return frame.to_pandas()


def load_reviews(lake, dataset: str, ds: str, min_positive: int = 4) -> dict[str, pd.DataFrame]:
    """Gold partitions up to ``ds`` as {split: DataFrame(text, rating, label)}."""
    from pipelines.constants import LABEL, SPLIT

    frame = _gold(lake, dataset, ds)
    missing = [c for c in ("title", "review_text", LABEL, SPLIT) if c not in frame.columns]
    if missing:
        raise TextDataError(f"gold {dataset!r} lacks column(s) {missing}; its contract must keep title and review_text")
    out = pd.DataFrame(
        {
            TEXT: review_text(frame["title"], frame["review_text"]),
            "rating": frame[LABEL].to_numpy(),
            "label": positive_label(frame[LABEL], min_positive),
            SPLIT: frame[SPLIT].astype(str).to_numpy(),
        }
    )
    out = out[out[TEXT] != ""]
    return {s: g.drop(columns=SPLIT).reset_index(drop=True) for s, g in out.groupby(SPLIT)}


def load_text(lake, dataset: str, ds: str, text_col: str, label_col: str, positive: str | None = None):
    """A user's text dataset from gold: ({split: DataFrame(text, label id)}, class names)."""
    from pipelines.constants import SPLIT

    frame = _gold(lake, dataset, ds)
    missing = [c for c in (text_col, label_col, SPLIT) if c not in frame.columns]
    if missing:
        raise TextDataError(
            f"gold {dataset!r} lacks column(s) {missing} (has {list(frame.columns)}); the dataset entry's "
            "columns.text / columns.label must name columns its contract keeps"
        )
    body = frame[text_col].fillna("").astype(str).str.strip()
    frame = frame[(body != "") & frame[label_col].notna() & frame[SPLIT].notna()]
    if frame.empty:
        raise TextDataError(f"gold {dataset!r} up to {ds}: every row has an empty text in {text_col!r} or no label")
    labels = frame[label_col].astype(str)
    classes = sorted(labels.unique())
    if len(classes) < 2:
        raise TextDataError(
            f"label column {label_col!r} of {dataset!r} holds one class ({classes[0]!r}); a classifier needs two or more"
        )
    if positive is not None and len(classes) == 2 and positive in classes:
        classes = [c for c in classes if c != positive] + [positive]
    index = {c: i for i, c in enumerate(classes)}
    out = pd.DataFrame(
        {TEXT: body[frame.index].to_numpy(), "label": labels.map(index).to_numpy(), SPLIT: frame[SPLIT].astype(str)}
    )
    return {s: g.drop(columns=SPLIT).reset_index(drop=True) for s, g in out.groupby(SPLIT)}, classes
