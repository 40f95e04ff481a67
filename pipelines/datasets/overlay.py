"""The user overlay: datasets and contracts a user added, kept apart from the bundled config.

``include/user/datasets.yaml`` is merged over ``include/config/datasets.yaml`` and
``include/user/contracts/<name>.yaml`` wins over a bundled contract of the same name (see
``pipelines.config.user_dir``; ``MLP_USER_DIR`` moves the folder). ``add_dataset`` profiles a
file, drafts its contract and writes both. A drafted contract carries the sha256 of what was
generated, so a re-run can tell an untouched draft (rewritten: same file, same draft) from one
a person edited (left alone unless forced).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from pipelines.config import DatasetSpec, Settings, user_dir
from pipelines.constants import CONFIG_DIR, REPO_ROOT
from pipelines.datasets import SIM_PREFIX, WHEEL_PREFIX, dataset_files
from pipelines.datasets.draft import Draft, check_draft, draft_contract
from pipelines.datasets.profile import DEFAULT_SAMPLE_ROWS, TableProfile, profile_table, read_sample
from pipelines.errors import DataError
from pipelines.features.contracts import parse_contract

HASH_MARK = "# draft-sha256: "
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_DATASETS_HEADER = (
    "# Your datasets, merged over include/config/datasets.yaml (same keys: source, contract, kind, columns).\n"
    "# Written by `python -m pipelines dataset add`; entries are rewritten whole, comments here are not kept.\n"
)


class OverlayError(DataError, ValueError):
    """The overlay cannot take this dataset as asked (a bad name, an edited contract, ...)."""


@dataclass(frozen=True)
class Added:
    profile: TableProfile
    draft: Draft
    check: dict  # the draft applied to its own sample: rows, broken, duplicates, reasons
    contract_path: Path
    datasets_path: Path
    status: str  # written, rewritten or unchanged


def contract_path(name: str) -> Path:
    return user_dir() / "contracts" / f"{name}.yaml"


def datasets_path() -> Path:
    return user_dir() / "datasets.yaml"


def source_ref(source: str) -> str:
    """A source as the dataset entry keeps it: paths absolute, or relative to the repo when inside it."""
    if source.startswith((WHEEL_PREFIX, SIM_PREFIX)):
        return source
    path = Path(source.removeprefix("file://")).expanduser().resolve()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def add_dataset(
    name: str,
    source: str,
    settings: Settings,
    command: str,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    force: bool = False,
    **options,
) -> Added:
    """Profile ``source``, draft its contract and write it and the dataset entry into the overlay.

    ``options`` go to ``draft_contract`` (kind, label, positive, time, roles, duplicates);
    ``command`` is recorded in the contract's header, so a reader knows how it was made.
    """
    _check_name(name, force)
    ref = source_ref(source)
    spec = DatasetSpec(source=ref)
    if options.get("kind") == "images":  # class folders are read as a pixel table (pipelines/datasets/images.py)
        from pipelines.datasets.images import image_options

        spec = DatasetSpec(source=ref, kind="images", options=image_options(ref, options))
        options["image_options"] = dict(spec.options)
    entry_settings = replace(settings, datasets={**settings.datasets, name: spec})
    sample = read_sample(dataset_files(name, entry_settings), sample_rows)
    profile = profile_table(sample, ref)
    draft = draft_contract(profile, name, ref, **options)
    body = render_contract(draft)
    contract = parse_contract(yaml.safe_load(body), where=f"the draft for {name}")
    check = check_draft(contract, sample.table)
    header = (
        f"# Drafted by `{command}`\n# from {profile.rows:,} rows of {ref}. Edit freely (docs/contracts.md): a re-run\n"
        f"# leaves an edited contract alone unless given --force.\n{HASH_MARK}{_sha(body)}\n"
    )
    path = contract_path(name)
    status = _write_contract(path, header + body, force)
    _write_entry(name, draft.entry)
    return Added(profile, draft, check, path, datasets_path(), status)


def _check_name(name: str, force: bool) -> None:
    if not _NAME.match(name):
        suggestion = re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "my_data"
        raise OverlayError(
            f"dataset name {name!r} must be lower case letters, digits and _ (it names folders and "
            f"MLP_DATASETS__<NAME>__ variables), starting with a letter; e.g. {suggestion!r}"
        )
    bundled = yaml.safe_load((CONFIG_DIR / "datasets.yaml").read_text()).get("datasets") or {}
    if name in bundled and not force:
        raise OverlayError(
            f"{name!r} is a bundled dataset (include/config/datasets.yaml); choose another name, or pass --force "
            "to shadow it with yours in the user overlay"
        )


def render_contract(draft: Draft) -> str:
    """The contract as YAML, one line per column with what the profile saw as a comment."""
    c = draft.contract
    key = c["key"] if isinstance(c["key"], str) else _flow(c["key"])
    lines = [f"name: {c['name']}", f"na_values: {_flow(c['na_values'])}", f"key: {key}  # {draft.key_comment}"]
    lines.append("columns:")
    keys = {name: _flow(name) for name in c["columns"]}  # a name like "4" is quoted, or YAML reads a number
    width = max(len(k) for k in keys.values()) + 1
    for name, rule in c["columns"].items():
        comment = draft.comments.get(name)
        lines.append(f"  {keys[name] + ':':<{width}} {_flow(rule)}" + (f"  # {comment}" if comment else ""))
    lines.append("gold:")
    lines += [f"  {k}: {_flow(v)}" for k, v in c["gold"].items()]
    return "\n".join(lines) + "\n"


def _flow(value) -> str:
    """One-line YAML; a scalar is dumped inside a list (alone it would get a document end marker)."""
    wrapped = value if isinstance(value, (dict, list)) else [value]
    text = yaml.safe_dump(wrapped, default_flow_style=True, width=1 << 20, sort_keys=False, allow_unicode=True).strip()
    return text if wrapped is value else text[1:-1]


def _sha(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def is_edited(text: str) -> bool:
    """Whether a contract's text differs from what was drafted (no hash line: written by hand)."""
    head, mark, rest = text.partition(HASH_MARK)
    if not mark:
        return True
    recorded, _, body = rest.partition("\n")
    return recorded.strip() != _sha(body)


def _write_contract(path: Path, text: str, force: bool) -> str:
    status = "written"
    if path.exists():
        old = path.read_text()
        if old == text:
            return "unchanged"
        if is_edited(old) and not force:
            raise OverlayError(
                f"{path} was edited since it was drafted (or written by hand), so it is left as it is. Pass --force "
                "to replace it with a fresh draft (keep a copy of your edits), or edit it further by hand"
            )
        status = "rewritten"
    _atomic_write(path, text)
    return status


def _write_entry(name: str, entry: dict) -> None:
    path = datasets_path()
    data = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    if not isinstance(data, dict):
        raise OverlayError(f"{path} must hold a mapping (datasets: ...); fix or delete it")
    data.setdefault("datasets", {})[name] = entry
    _atomic_write(path, _DATASETS_HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
