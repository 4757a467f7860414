"""Listings as pandas DataFrames that keep their meaning: times as `datetime64[ns, UTC]`, provider
`details` flattened into `details.<key>` columns (with `--all-columns`; left out otherwise), and the
listing's caption, notes and footnotes in `df.attrs`. An empty listing still has its columns, and
`df.attrs["message"]` says why it is empty."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

NOTEBOOK_EXTRA = "pip install 'gpu-tools[notebook]'"


class MissingExtra(ImportError):
    """A DataFrame or a chart needs an optional package: one line in a notebook, not a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def need_pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise MissingExtra(f"DataFrames need pandas: {NOTEBOOK_EXTRA} (or pip install pandas).") from None
    return pandas


def is_time_field(name: str, annotation: Any = None) -> bool:
    """Fields that hold a moment: `at`, `since`, `*_at`, `*_as_of`, or typed as datetime."""
    return name in ("at", "since") or name.endswith(("_at", "_as_of")) or "datetime" in str(annotation)


def dataframe(
    items: Sequence[Any],
    model: type[BaseModel] | None,
    *,
    all_columns: bool = False,
    attrs: dict[str, Any] | None = None,
) -> Any:
    """One row per item, one column per field of `model`; see the module's docstring."""
    pd = need_pandas()
    if model is None and items:
        model = type(items[0])
    fields = dict(model.model_fields) if model is not None else {}
    keep = [n for n in fields if n != "details"]
    rows = []
    detail_keys: list[str] = []
    for item in items:
        row = {n: getattr(item, n, None) for n in keep}
        row = {n: (v.model_dump(mode="json") if isinstance(v, BaseModel) else v) for n, v in row.items()}
        details = getattr(item, "details", None)
        if all_columns and isinstance(details, dict):
            for key, value in details.items():
                column = f"details.{key}"
                if column not in detail_keys:
                    detail_keys.append(column)
                row[column] = value
        rows.append(row)
    frame = pd.DataFrame(rows, columns=keep + detail_keys).infer_objects()
    for name in keep:
        if is_time_field(name, fields[name].annotation):
            frame[name] = pd.to_datetime(frame[name], utc=True, errors="coerce").astype("datetime64[ns, UTC]")
    frame.attrs.update(attrs or {})
    return frame


def listing_attrs(result: Any, caption: str, footnotes: Sequence[str], message: str | None) -> dict[str, Any]:
    """What a listing says besides its rows: caption, notes, footnotes, each provider's status."""
    attrs: dict[str, Any] = {
        "caption": caption,
        "notes": list(getattr(result, "notes", []) or []),
        "footnotes": list(footnotes),
        "providers": {p.provider: p.status for p in getattr(result, "providers", []) or []},
        "sandbox": bool(getattr(result, "sandbox", False)),
    }
    if message:
        attrs["message"] = message
    return attrs
