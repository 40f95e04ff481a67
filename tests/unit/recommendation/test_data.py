"""Ratings, items and users from gold: column mapping, repeated ratings, optional tables, and the errors users hit."""

import numpy as np
import pandas as pd
import pytest

from pipelines.config import load_settings
from pipelines.constants import ITEM_ID, RATING, TIMESTAMP, USER_ID
from pipelines.lake import Lake
from pipelines.recommendation import data as rdata
from pipelines.recommendation.data import RecommendationDataError, clean_ratings, synthetic_ratings
from tests.unit.recommendation.helpers import movielens_like, ratings_frame, write_gold

DS = "2026-01-01"


@pytest.fixture
def lake(tmp_path):
    return Lake((tmp_path / "lake").as_uri())


@pytest.fixture
def cfg():
    return load_settings({}).recommendation


def test_partitions_up_to_the_date_tables_and_users_without_ratings(lake, cfg):
    ratings = movielens_like(lake)
    later = ratings_frame(seed=9).head(50)
    write_gold(lake, "movielens_ratings", "2026-01-05", later)
    got = rdata.load(lake, cfg, DS)
    assert list(got.ratings.columns) == [USER_ID, ITEM_ID, RATING, TIMESTAMP]
    assert len(got.ratings) == len(ratings)  # the 2026-01-05 partition is after the date
    assert got.items[rdata.TITLE].iloc[0] == "Film 1" and len(got.items) == 31
    summary = got.summary()
    assert summary["users_without_ratings"] == len(np.setdiff1d(got.users, ratings[USER_ID]))
    assert set(got.all_users) == set(ratings[USER_ID]) | set(range(1, 44))
    assert summary["partitions"]["movielens_ratings"] == [DS] and len(got.content_hash) == 64
    assert len(rdata.load(lake, cfg, "2026-01-05").ratings) >= len(ratings)


def test_a_re_rated_item_keeps_the_latest_rating(lake, cfg):
    frame = pd.DataFrame(
        {"user_id": [1, 1, 2, 2], "movie_id": [7, 7, 7, 8], "rating": [2.0, 5.0, 3.0, 4.0], "timestamp": [20, 10, 5, 6]}
    )
    write_gold(lake, "movielens_ratings", DS, frame)
    write_gold(lake, "movielens_ratings", "2026-01-02", frame.head(1).assign(rating=1.0, timestamp=30))
    got = rdata.load(lake, cfg, "2026-01-02")
    kept = got.ratings.set_index([USER_ID, ITEM_ID])[RATING]
    assert kept[(1, 7)] == 1.0 and kept[(2, 7)] == 3.0  # latest timestamp wins, across partitions too
    assert got.collapsed == 2 and got.summary()["collapsed_repeat_ratings"] == 2


def test_missing_tables_are_noted_not_fatal(lake, cfg):
    write_gold(lake, "movielens_ratings", DS, ratings_frame())
    got = rdata.load(lake, cfg, DS)
    assert got.items is None and got.users is None
    assert any("item table 'movielens_items' has no gold" in n for n in got.notes)


def test_own_column_names_come_from_the_settings(lake):
    frame = ratings_frame().rename(columns={"user_id": "customer", "movie_id": "sku", "rating": "stars"})
    write_gold(lake, "shop_ratings", DS, frame.drop(columns=["timestamp"]))
    env = {
        "MLP_RECOMMENDATION__RATINGS": "shop_ratings",
        "MLP_RECOMMENDATION__ITEMS": "",
        "MLP_RECOMMENDATION__USERS": "",
        "MLP_RECOMMENDATION__COLUMNS__USER": "customer",
        "MLP_RECOMMENDATION__COLUMNS__ITEM": "sku",
        "MLP_RECOMMENDATION__COLUMNS__RATING": "stars",
        "MLP_RECOMMENDATION__COLUMNS__TIMESTAMP": "",
    }
    got = rdata.load(Lake(lake.root_uri), load_settings(env).recommendation, DS)
    assert list(got.ratings.columns) == [USER_ID, ITEM_ID, RATING] and len(got.ratings) == len(frame)


def test_no_gold_says_which_dataset_to_build(lake, cfg):
    with pytest.raises(RecommendationDataError, match="run the features DAG with dataset=movielens_ratings"):
        rdata.load(lake, cfg, DS)


def test_a_missing_column_is_named_with_its_setting(lake, cfg):
    write_gold(lake, "movielens_ratings", DS, ratings_frame().rename(columns={"movie_id": "film"}))
    with pytest.raises(
        RecommendationDataError, match=r"no column\(s\) \['movie_id'\] \(named by recommendation.columns"
    ):
        rdata.load(lake, cfg, DS)


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pd.DataFrame({USER_ID: [], ITEM_ID: [], RATING: []}), "has no rows"),
        (pd.DataFrame({USER_ID: [1, None], ITEM_ID: [1, 2], RATING: [3, 4]}), "1 row\\(s\\) with no user_id"),
        (pd.DataFrame({USER_ID: [1, 2], ITEM_ID: [1, 2], RATING: ["good", "bad"]}), "not numbers"),
        (pd.DataFrame({USER_ID: [1, 1], ITEM_ID: [1, 2], RATING: [3, 4]}), "1 user\\(s\\) and 2 item\\(s\\)"),
        (pd.DataFrame({USER_ID: [1, 2], ITEM_ID: [1, 2]}), "lack the column 'rating'"),
    ],
    ids=["empty", "null-user", "text-ratings", "one-user", "no-rating-column"],
)
def test_unusable_ratings_are_refused(frame, match):
    with pytest.raises(RecommendationDataError, match=match):
        clean_ratings(frame, "ratings")


def test_synthetic_ratings_look_like_movielens():
    frame = synthetic_ratings(300, 200, 6000, seed=1)
    assert len(frame) == 6000 and not frame.duplicated([USER_ID, ITEM_ID]).any()
    assert set(frame[RATING].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    counts = frame[ITEM_ID].value_counts()
    assert counts.iloc[0] > 5 * counts.median()  # a long tail of rarely rated items
    assert (synthetic_ratings(300, 200, 6000, seed=1) == frame).all().all()
    with pytest.raises(ValueError, match="over half"):
        synthetic_ratings(10, 10, 80)


def ml_latest_like(path, n_users=30, n_items=25, n_ratings=300) -> pd.DataFrame:
    """A ratings file as MovieLens 'latest' ships it: userId, movieId, rating, timestamp, title, genres."""
    frame = synthetic_ratings(n_users, n_items, n_ratings).rename(
        columns={USER_ID: "userId", ITEM_ID: "movieId", RATING: "rating", TIMESTAMP: "timestamp"}
    )
    frame["movieId"] = frame["movieId"] * 1000  # another catalogue than MovieLens 100k's ids 1..1682
    frame["title"] = [f"Film {m} (1999)" for m in frame["movieId"]]
    frame["genres"] = "Drama|Comedy"
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture
def user_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLP_USER_DIR", str(tmp_path / "user"))
    monkeypatch.setenv("MLP_LAKE_ROOT", str(tmp_path / "lake"))
    return tmp_path


def test_the_env_var_route_takes_a_ratings_file_with_camel_case_names(user_env, monkeypatch):
    from pipelines.cli import main

    frame = ml_latest_like(user_env / "ratings.csv")
    monkeypatch.setenv("MLP_DATASETS__MOVIELENS_RATINGS__SOURCE", str(user_env / "ratings.csv"))
    assert main(["ingest", "movielens_ratings", "--ds", DS]) == 0  # userId -> user_id, movieId -> movie_id
    settings = load_settings()
    lake = Lake(settings.lake_root)
    write_gold(lake, "movielens_items", DS, pd.DataFrame({"movie_id": range(1, 40), "movie_title": "Toy Story"}))
    got = rdata.load(lake, rdata.for_dataset(settings), DS)
    assert len(got.ratings) == len(frame) and got.ratings[ITEM_ID].min() == 1000
    assert got.items is None  # the bundled item table is another catalogue: its titles would be wrong
    assert any("holds 0% of the rated items" in n for n in got.notes)


def test_an_added_ratings_dataset_uses_its_columns_and_its_own_titles(user_env, capsys):
    from pipelines.cli import main
    from pipelines.recommendation.run import choose_dataset, skip_reason

    frame = ml_latest_like(user_env / "ratings.csv")
    assert main(["dataset", "add", "my_ratings", "--source", str(user_env / "ratings.csv"), "--kind", "ratings"]) == 0
    assert main(["ingest", "my_ratings", "--ds", DS]) == 0
    settings = load_settings()
    cfg = rdata.for_dataset(settings, "my_ratings")
    assert (cfg.columns.user, cfg.columns.item, cfg.items, cfg.users) == ("userid", "movieid", "", "")
    assert cfg.registered_model == "my_ratings_recommender"
    assert rdata.for_dataset(settings).registered_model == "recommender"  # the configured one is unchanged
    got = rdata.load(Lake(settings.lake_root), cfg, DS)
    assert len(got.ratings) == len(frame)
    first = frame.drop_duplicates("movieId").set_index("movieId")["title"]
    assert got.items.set_index(ITEM_ID)[rdata.TITLE].to_dict() == first.to_dict()
    # its gold event starts the recommendation DAG on it; other datasets' events still skip it
    assert choose_dataset(settings, [{"dataset": "my_ratings", "ds": DS}]) == "my_ratings"
    assert choose_dataset(settings, [{"dataset": "movielens_items"}, {"dataset": "my_ratings"}]) == "movielens_ratings"
    assert choose_dataset(settings, [{"dataset": "adult"}], "my_ratings") == "my_ratings"
    assert "or a dataset added with --kind ratings" in skip_reason(settings, [{"dataset": "adult"}])
