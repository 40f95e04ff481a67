import pytest

from pipelines.deep import steps


def test_sentiment_wanted_skips_other_datasets():
    assert steps.sentiment_wanted("reviews", [])
    assert steps.sentiment_wanted("reviews", [{"dataset": "adult"}, {"dataset": "reviews"}])
    assert not steps.sentiment_wanted("reviews", [{"dataset": "adult"}])


def test_sentiment_param_errors():
    with pytest.raises(steps.ParamError, match="unknown sentiment model"):
        steps.sentiment({"ds": "2026-01-01", "models": ["bert"]}, "manual__1")
    with pytest.raises(steps.ParamError, match="no date"):
        steps.sentiment({}, "manual__1", [], None)
