"""Small gold tables for the recommendation tests, in MovieLens' column names (the default settings)."""

import pandas as pd
import pyarrow as pa

from pipelines.constants import GOLD, ITEM_ID, USER_ID
from pipelines.lake import Lake
from pipelines.recommendation.data import synthetic_ratings


def write_gold(lake: Lake, dataset: str, ds: str, frame: pd.DataFrame) -> dict:
    return lake.write_partition(GOLD, dataset, ds, pa.Table.from_pandas(frame, preserve_index=False), {})


def ratings_frame(n_users=40, n_items=30, n_ratings=500, seed=0) -> pd.DataFrame:
    """Synthetic ratings with MovieLens column names."""
    return synthetic_ratings(n_users, n_items, n_ratings, seed=seed).rename(columns={ITEM_ID: "movie_id"})


def movielens_like(lake: Lake, ds: str = "2026-01-01", n_users=40, n_items=30, n_ratings=500) -> pd.DataFrame:
    """Ratings, an item table with titles (and one item nobody rated) and a user table with 3 users who never rated."""
    ratings = ratings_frame(n_users, n_items, n_ratings)
    write_gold(lake, "movielens_ratings", ds, ratings)
    items = pd.DataFrame(
        {"movie_id": range(1, n_items + 2), "movie_title": [f"Film {i}" for i in range(1, n_items + 2)]}
    )
    write_gold(lake, "movielens_items", ds, items)
    users = pd.DataFrame({USER_ID: range(1, n_users + 4), "age": 30})
    write_gold(lake, "movielens_users", ds, users)
    return ratings
