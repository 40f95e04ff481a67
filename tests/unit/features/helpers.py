"""Small lake builders shared by the feature tests."""

from pipelines.lake import Lake

DS = "2026-01-01"

SPEC = {
    "name": "people",
    "na_values": ["?", ""],
    "key": "all",
    "columns": {
        "age": {"type": "int", "min": 0, "max": 120},
        "city": {"type": "string", "nullable": True},
        "score": {"type": "float", "min": 0},
        "grade": {"type": "string", "allowed": ["A", "B"], "map": {"a": "A", "b": "B"}},
    },
    "gold": {"label": {"column": "grade", "positive": "A"}},
}


def land_csv(lake: Lake, text: str, name: str = "a.csv", ds: str = DS, dataset: str = "people") -> str:
    rel = f"landing/{dataset}/ds={ds}/{name}"
    lake.write_bytes(rel, text.encode())
    return rel
