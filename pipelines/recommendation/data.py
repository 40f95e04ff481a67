"""Ratings, items and users from the gold layer, in the canonical columns of this package.

The ratings dataset (``recommendation.ratings``) holds one row per rating; its column names come
from ``recommendation.columns`` and become ``user_id``, ``item_id``, ``rating``, ``timestamp``.
Every gold partition up to the date is used (the feed brings new ratings each day). A user who
rated the same item more than once keeps the latest rating (by timestamp, then by partition); the
number of ratings collapsed that way is reported, so nothing disappears silently.

The item and user tables are optional: items give titles and the catalogue, users give the ids of
people who have not rated anything yet (they get popular items). When they are configured but
have no gold yet, or the item table holds under half of the rated items (it belongs to another
catalogue), the summary says so and the run goes on with the ratings alone. Without an item
table, titles come from a title column of the ratings themselves (``title``, ``item_title``, ...).

A ratings dataset other than ``recommendation.ratings`` (one added with ``dataset add --kind
ratings``) is read with its entry's ``columns`` mapping, without the configured item and user
tables, and registered as ``<dataset>_recommender`` (``for_dataset``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.config import RatingColumns, RecommendationSettings, Settings
from pipelines.constants import GOLD, ITEM_ID, RATING, TIMESTAMP, USER_ID
from pipelines.errors import DataError
from pipelines.lake import Lake

TITLE = "title"
TITLE_COLUMNS = ("title", "item_title", "item_name", "name")  # a ratings column that can give titles
MIN_ITEM_TABLE_SHARE = 0.5  # an item table holding fewer of the rated items is another catalogue's


class RecommendationDataError(DataError, ValueError):
    """Ratings that no recommender can learn from, or a column the settings name that is not there."""


@dataclass
class RecommendationData:
    ratings: pd.DataFrame  # user_id, item_id, rating, timestamp
    items: pd.DataFrame | None = None  # item_id (+ title)
    users: np.ndarray | None = None  # ids from the user table
    content_hashes: dict[str, dict[str, str]] = field(default_factory=dict)  # dataset -> {ds: gold content hash}
    collapsed: int = 0  # repeated (user, item) ratings folded into the latest
    notes: list[str] = field(default_factory=list)

    @property
    def all_users(self) -> np.ndarray:
        """Everyone to recommend to: users with ratings and users from the user table."""
        rated = self.ratings[USER_ID].unique()
        return np.unique(np.concatenate([rated, self.users])) if self.users is not None else np.sort(rated)

    @property
    def content_hash(self) -> str:
        text = "".join(
            f"{name}:{ds}:{h};"
            for name in sorted(self.content_hashes)
            for ds, h in sorted(self.content_hashes[name].items())
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def summary(self) -> dict:
        r = self.ratings
        n_users, n_items = r[USER_ID].nunique(), r[ITEM_ID].nunique()
        return {
            "ratings": len(r),
            "users_with_ratings": int(n_users),
            "items_with_ratings": int(n_items),
            "density": float(len(r) / max(n_users * n_items, 1)),
            "rating_min": float(r[RATING].min()),
            "rating_max": float(r[RATING].max()),
            "rating_mean": float(r[RATING].mean()),
            "ratings_per_user_median": float(r.groupby(USER_ID).size().median()),
            "collapsed_repeat_ratings": int(self.collapsed),
            "item_table_rows": None if self.items is None else len(self.items),
            "user_table_rows": None if self.users is None else len(self.users),
            "users_without_ratings": 0
            if self.users is None
            else int(len(np.setdiff1d(self.users, r[USER_ID].unique()))),
            "partitions": {name: sorted(h) for name, h in self.content_hashes.items()},
            "content_hash": self.content_hash,
            "notes": self.notes,
        }


def for_dataset(settings: Settings, dataset: str = "") -> RecommendationSettings:
    """The recommendation settings for a ratings dataset ("" is ``recommendation.ratings``).

    A dataset entry with a ``columns`` mapping (``dataset add --kind ratings`` drafts it) names
    the user/item/rating/timestamp columns; a role it leaves out keeps the ``recommendation.columns``
    name (timestamp: none). Another dataset than the configured one comes without the item and user
    tables (they describe the configured catalogue) and gets its own registered model.
    """
    cfg = settings.recommendation
    name = dataset or cfg.ratings
    mapped = dict(settings.dataset(name).columns)
    columns = cfg.columns
    if mapped:
        columns = RatingColumns(**{"timestamp": "", **mapped}) if "timestamp" not in mapped else RatingColumns(**mapped)
        columns = replace(
            columns, **{r: getattr(cfg.columns, r) for r in ("user", "item", "rating") if r not in mapped}
        )
    if name == cfg.ratings:
        return replace(cfg, columns=columns)
    return replace(cfg, ratings=name, items="", users="", columns=columns, registered_model=f"{name}_recommender")


def _partitions(lake: Lake, dataset: str, ds: str) -> list[str]:
    return [d for d in lake.list_partitions(GOLD, dataset) if d <= ds]


def _read(
    lake: Lake, dataset: str, dates: list[str], columns: dict[str, str], setting: str
) -> tuple[pd.DataFrame, dict]:
    """Gold partitions of a dataset with ``columns`` (source name -> canonical name), oldest first."""
    frames, hashes = [], {}
    for d in dates:
        table = lake.read_partition(GOLD, dataset, d)
        missing = [src for src in columns if src not in table.column_names]
        if missing:
            raise RecommendationDataError(
                f"gold {dataset} {d} has no column(s) {missing} (named by {setting} in include/config/settings.yaml); "
                f"its columns: {[c for c in table.column_names if not c.startswith('_')]}. Fix the setting or the data."
            )
        frame = table.select(list(columns)).to_pandas()
        frame.columns = [columns[c] for c in frame.columns]
        frame["_part"] = len(frames)
        frames.append(frame)
        hashes[d] = lake.read_manifest(GOLD, dataset, d)["content_hash"]
    return pd.concat(frames, ignore_index=True), hashes


def load(lake: Lake, cfg: RecommendationSettings, ds: str) -> RecommendationData:
    """Ratings (and the optional tables) from every gold partition up to ``ds``; refuses unusable ratings."""
    cols = cfg.columns
    dates = _partitions(lake, cfg.ratings, ds)
    if not dates:
        raise RecommendationDataError(
            f"no gold partitions for ratings dataset {cfg.ratings!r} up to {ds} under {lake.uri(GOLD, cfg.ratings)}; "
            f"run the features DAG with dataset={cfg.ratings} for those dates first"
        )
    mapping = {cols.user: USER_ID, cols.item: ITEM_ID, cols.rating: RATING}
    if cols.timestamp:
        mapping[cols.timestamp] = TIMESTAMP
    dates_rated = dates
    ratings, hashes = _read(lake, cfg.ratings, dates, mapping, "recommendation.columns or the dataset's columns")
    ratings, collapsed = clean_ratings(ratings, cfg.ratings)
    data = RecommendationData(ratings=ratings, content_hashes={cfg.ratings: hashes}, collapsed=collapsed)

    if cfg.items:
        dates = _partitions(lake, cfg.items, ds)
        if dates:
            wanted = {cols.item: ITEM_ID}
            if cfg.item_title:
                wanted[cfg.item_title] = TITLE
            items, data.content_hashes[cfg.items] = _read(
                lake, cfg.items, dates, wanted, "recommendation.item_title/columns.item"
            )
            items = items.drop_duplicates(ITEM_ID, keep="last").drop(columns="_part").reset_index(drop=True)
            rated = ratings[ITEM_ID].unique()
            share = float(np.isin(rated, items[ITEM_ID].to_numpy()).mean())
            if share >= MIN_ITEM_TABLE_SHARE:
                data.items = items
            else:
                data.content_hashes.pop(cfg.items)
                data.notes.append(
                    f"item table {cfg.items!r} holds {share:.0%} of the rated items (another catalogue?): not used; "
                    "set recommendation.items to your item table, or '' for none"
                )
        else:
            data.notes.append(f"item table {cfg.items!r} has no gold up to {ds}: no titles, catalogue = rated items")
    if data.items is None:
        data.items = _titles_from_ratings(lake, cfg, dates_rated)
    if cfg.users:
        dates = _partitions(lake, cfg.users, ds)
        if dates:
            users, data.content_hashes[cfg.users] = _read(
                lake, cfg.users, dates, {cols.user: USER_ID}, "recommendation.columns.user"
            )
            data.users = np.unique(users[USER_ID].dropna().to_numpy())
        else:
            data.notes.append(
                f"user table {cfg.users!r} has no gold up to {ds}: recommending to users with ratings only"
            )
    return data


def _titles_from_ratings(lake: Lake, cfg: RecommendationSettings, dates: list[str]) -> pd.DataFrame | None:
    """(item_id, title) from a title column of the ratings themselves (the latest title of each item), if any."""
    names = lake.read_partition(GOLD, cfg.ratings, dates[-1]).column_names
    found = [c for c in (cfg.item_title, *TITLE_COLUMNS) if c and c in names and c != cfg.columns.item]
    if not found:
        return None
    frames = [lake.read_partition(GOLD, cfg.ratings, d).select([cfg.columns.item, found[0]]).to_pandas() for d in dates]
    items = pd.concat(frames, ignore_index=True).dropna()
    items.columns = [ITEM_ID, TITLE]
    return items.drop_duplicates(ITEM_ID, keep="last").reset_index(drop=True)


def clean_ratings(frame: pd.DataFrame, dataset: str = "ratings") -> tuple[pd.DataFrame, int]:
    """Check the canonical ratings and keep the latest rating per (user, item); returns (ratings, collapsed)."""
    if len(frame) == 0:
        raise RecommendationDataError(f"ratings dataset {dataset!r} has no rows: nothing to learn from")
    for col in (USER_ID, ITEM_ID, RATING):
        if col not in frame.columns:
            raise RecommendationDataError(f"ratings lack the column {col!r}; columns: {list(frame.columns)}")
        nulls = int(frame[col].isna().sum())
        if nulls:
            raise RecommendationDataError(
                f"ratings dataset {dataset!r}: {nulls} row(s) with no {col}; fix the data or its contract"
            )
    if not pd.api.types.is_numeric_dtype(frame[RATING]):
        raise RecommendationDataError(
            f"ratings dataset {dataset!r}: the rating column holds {frame[RATING].dtype} values, not numbers"
        )
    ratings = frame[RATING].astype(np.float64)
    if not np.isfinite(ratings).all():
        raise RecommendationDataError(f"ratings dataset {dataset!r}: ratings must be finite numbers")
    frame = frame.assign(**{RATING: ratings})
    order = [c for c in (TIMESTAMP, "_part") if c in frame.columns]
    if order:
        frame = frame.sort_values(order, kind="stable")
    before = len(frame)
    frame = frame.drop_duplicates([USER_ID, ITEM_ID], keep="last")
    keep = [c for c in (USER_ID, ITEM_ID, RATING, TIMESTAMP) if c in frame.columns]
    frame = frame[keep].sort_values([USER_ID, ITEM_ID], kind="stable").reset_index(drop=True)
    if frame[USER_ID].nunique() < 2 or frame[ITEM_ID].nunique() < 2:
        raise RecommendationDataError(
            f"ratings dataset {dataset!r} has {frame[USER_ID].nunique()} user(s) and {frame[ITEM_ID].nunique()} item(s); "
            "collaborative filtering needs at least 2 of each"
        )
    return frame, before - len(frame)


def synthetic_ratings(n_users: int, n_items: int, n_ratings: int, seed: int = 0, factors: int = 10) -> pd.DataFrame:
    """MovieLens-like ratings: skewed activity and popularity, people choose what suits their taste.

    Each user has a lognormal number of ratings (at least 1); which items they rate is drawn
    without replacement with odds ``popularity x exp(3 x taste)`` (Gumbel top-k), taste being a
    rank-``factors`` product; the stars are ``3.6 + user bias + item bias + taste + noise``,
    rounded to 1..5. Generated block by block of users, so memory stays small.
    """
    if n_ratings > n_users * n_items // 2:
        raise ValueError(f"{n_ratings} ratings would fill over half of {n_users} users x {n_items} items")
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(0, 0.35, (n_users, factors)), rng.normal(0, 0.35, (n_items, factors))
    user_bias, item_bias = rng.normal(0, 0.35, n_users), rng.normal(0, 0.45, n_items)
    log_popularity = -0.9 * np.log(np.arange(1, n_items + 1))[rng.permutation(n_items)]
    activity = rng.lognormal(0.0, 1.0, n_users)
    counts = np.clip(np.floor(activity / activity.sum() * n_ratings), 1, n_items // 2).astype(np.int64)
    while counts.sum() != n_ratings:  # top up (or trim) to exactly n_ratings, a rating at a time per user
        diff = n_ratings - int(counts.sum())
        room = np.flatnonzero(counts < n_items // 2) if diff > 0 else np.flatnonzero(counts > 1)
        pick = rng.choice(room, min(abs(diff), len(room)), replace=False)
        counts[pick] += 1 if diff > 0 else -1
    users, items, tastes = [], [], []
    block = max(1, 2_000_000 // n_items)
    for start in range(0, n_users, block):
        stop = min(start + block, n_users)
        taste = P[start:stop] @ Q.T
        keys = log_popularity + 3.0 * taste + rng.gumbel(size=taste.shape)
        order = np.argsort(-keys, axis=1)
        chosen = np.arange(n_items)[None, :] < counts[start:stop, None]
        rows, cols = np.nonzero(chosen)
        picked = order[rows, cols]
        users.append(rows + start)
        items.append(picked)
        tastes.append(taste[rows, picked])
    u, i, taste = np.concatenate(users), np.concatenate(items), np.concatenate(tastes)
    raw = 3.6 + user_bias[u] + item_bias[i] + taste + rng.normal(0, 0.8, len(u))
    return pd.DataFrame(
        {
            USER_ID: u + 1,
            ITEM_ID: i + 1,
            RATING: np.clip(np.rint(raw), 1, 5),
            TIMESTAMP: rng.integers(9.5e8, 1.05e9, len(u)),
        }
    ).sort_values([USER_ID, ITEM_ID], ignore_index=True)


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)
