"""The text and images kinds of ``dataset add`` (issue 23): which columns are the text, the label, the pixels."""

from __future__ import annotations

from pipelines.datasets.draft import DraftError, _drops, _find, _label_column
from pipelines.datasets.profile import TableProfile


def deep_roles(profile, kind, label, positive, text, image_options, draft, drops) -> tuple[dict, dict]:
    """Text: the text and label columns (named or inferred), nothing else in gold. Images: the label and
    the pixel columns (height x width x channels of them), file and unreadable kept out of gold."""
    if kind == "text":
        if text:
            body = _find(profile, text, "--text")
        else:
            strings = [c for c in profile.columns if c.type == "string" and c.name != (label or "")]
            if not strings:
                raise DraftError("no text column in the file; pass --text COLUMN")
            body = max(strings, key=lambda c: (c.has_space, c.distinct))
        if not body.distinct:
            raise DraftError(f"text column {body.source!r} holds no text in the sample (every value is empty)")
        rest = ProfileView(profile, exclude=body.name)
        target = _label_column(rest, label)
        draft.entry["columns"] = {"text": body.name, "label": target.name}
        if positive is not None:
            if positive not in (target.counts or {}):
                raise DraftError(f"--positive {positive!r} is not a value of label {target.source!r}")
            draft.entry["options"] = {"positive": positive}
        _drops(profile, {body.name, target.name}, drops)  # ids stay ids (a repeated id is a duplicate)
        for col in profile.columns:
            if col.name not in (body.name, target.name):
                drops.setdefault(col.name, "not the text or the label")
        draft.notes.append(
            f"text column {body.source!r}, label {target.source!r} ({target.distinct} classes); change with "
            "--text / --label"
        )
        return {"unlabelled": True}, {body.name: "text", target.name: "label (classes)"}
    target = _label_column(profile, label or ("label" if profile.column("label") else None))
    shape = list(image_options["shape"])
    pixels = [c for c in profile.columns if c.name not in (target.name, "file", "unreadable")]
    if (
        any(c.type not in ("int", "float") for c in pixels if c.distinct)
        or len(pixels) != shape[0] * shape[1] * shape[2]
    ):
        raise DraftError(
            f"images of shape {shape[0]}x{shape[1]} with {shape[2]} channel(s) need {shape[0] * shape[1] * shape[2]} "
            f"numeric pixel columns besides the label {target.source!r}; the file has {len(pixels)} other column(s)"
        )
    draft.entry["options"] = dict(image_options)
    for name in ("file", "unreadable"):
        if profile.column(name):
            drops[name] = "where the pixels came from" if name == "file" else "why a file could not be read"
    draft.notes.append(
        f"images {shape[0]}x{shape[1]}, {'grey' if shape[2] == 1 else 'colour'}, label {target.source!r} "
        f"({target.distinct} classes)" + ("; resized to the declared --size" if image_options.get("resize") else "")
    )
    return {"unlabelled": True}, {target.name: "label (classes)"}


class ProfileView:
    """A profile without one column (the label is not looked for among the text column)."""

    def __init__(self, profile: TableProfile, exclude: str):
        self.columns = [c for c in profile.columns if c.name != exclude]
        self._profile = profile

    def column(self, name: str):
        found = self._profile.column(name)
        return found if found in self.columns else None
