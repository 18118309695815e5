"""A task from data already in memory: a `datasets.Dataset` (or DatasetDict), a list of dicts, or a
pandas DataFrame, with text column(s) and a label column.

The rules are those of a user file (data/tasks.py): text columns `sentence`, `text` or
`sentence1`+`sentence2` unless named; integer or string labels are classes numbered in sorted
order, non-integer numbers make a regression; one split alone gets a stratified 90/10 dev split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prunepeft.data.tasks import TaskData, _check_classes, _pick_text_columns, _split_off_dev, _user_labels, rows_from_records
from prunepeft.errors import UserError

NAME = "in-memory"
TRAIN_KEYS = ("train",)
DEV_KEYS = ("validation", "dev", "test")


def _records(data, what: str) -> list[dict]:
    """Plain dicts from a Dataset, a DataFrame or a sequence of mappings."""
    if hasattr(data, "to_dict") and hasattr(data, "columns") and hasattr(data, "iloc"):  # pandas
        data = data.to_dict(orient="records")
    elif hasattr(data, "column_names") and hasattr(data, "to_list"):  # datasets.Dataset
        data = data.to_list()
    if isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
        raise UserError(f"{what} must be a datasets.Dataset, a pandas DataFrame or a list of dicts such as "
                        f"{{'text': '...', 'label': 1}}, got {type(data).__name__}")
    rows = list(data)
    if not rows:
        raise UserError(f"{what} has no rows; pass at least a few labelled examples")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise UserError(f"{what} row {i + 1} is {type(row).__name__}, not a dict; each row must look like {{'text': '...', 'label': 1}}")
    return [dict(r) for r in rows]


def _splits(data) -> tuple[list[dict], list[dict] | None]:
    """(train records, dev records or None) from the forms `data` may take."""
    if isinstance(data, tuple):
        if len(data) != 2:
            raise UserError(f"data as a tuple must be (train, dev), got {len(data)} parts")
        return _records(data[0], "the training data"), _records(data[1], "the dev data")
    if isinstance(data, Mapping) or (hasattr(data, "keys") and not hasattr(data, "column_names") and not hasattr(data, "iloc")):
        keys = list(data.keys())
        train = next((k for k in TRAIN_KEYS if k in keys), None)
        if train is None:
            raise UserError(f"data has the splits {', '.join(map(str, keys)) or 'none'} but no 'train'; pass {{'train': ..., 'validation': ...}}")
        dev = next((k for k in DEV_KEYS if k in keys), None)
        return _records(data[train], f"data['{train}']"), (_records(data[dev], f"data['{dev}']") if dev else None)
    return _records(data, "the data"), None


def _label_ids(values: list, where: list[str], label_names: list[str]) -> list[int]:
    """Class ids under a label set fixed before (a trained model's): a name or its index."""
    ids = {name: i for i, name in enumerate(label_names)}
    out = []
    for value, w in zip(values, where):
        key = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        if key in ids:
            out.append(ids[key])
        elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(label_names):
            out.append(value)
        else:
            raise UserError(f"{w} has label {value!r}, outside the label set of the model ({', '.join(label_names)})")
    return out


def task_from_memory(data, *, text_columns=None, label_column: str | None = None, seed: int = 0,
                     label_names: list[str] | None = None, is_regression: bool | None = None, split_dev: bool = True) -> TaskData:
    """TaskData from in-memory rows. `label_names` / `is_regression` fix the label set (to evaluate a
    trained model on new rows); otherwise it is read from the labels as for a user file. Without
    `split_dev`, rows given as one split are all dev rows (evaluation data)."""
    train, dev = _splits(data)
    columns = list(train[0].keys())
    fields = _pick_text_columns(columns, list(text_columns) if text_columns else None, "the data")
    label_col = label_column or "label"
    if label_col not in columns:
        raise UserError(f"the data has no label column {label_col!r} (columns present: {', '.join(map(str, columns))}); "
                        "pass label_column=NAME")
    parts = {"train": train, **({"dev": dev} if dev is not None else {})}
    records = [(p, i, rec) for p in parts for i, rec in enumerate(parts[p])]
    where = [f"row {i + 1} of the {p} data" for p, i, _ in records]
    values = [rec.get(label_col) for _, _, rec in records]
    if is_regression:  # a regression model's targets, even where they happen to be integers
        _user_labels(values, where)  # every row has a label
        try:
            labels, names = [float(v) for v in values], None
        except (TypeError, ValueError):
            raise UserError("the model is a regression but some labels are not numbers") from None
    elif label_names is not None:
        labels, names = _label_ids(values, where, list(map(str, label_names))), list(map(str, label_names))
    else:
        labels, names = _user_labels(values, where)
    out = rows_from_records(parts, records, labels, fields, where)
    regression = names is None
    if not regression and label_names is None and split_dev:  # a label set learnt from these rows: the file rules
        _check_classes(out, names, {"train": "the training data", "dev": "the dev data"}, label_col)
    if "dev" not in out and not split_dev:
        out["dev"] = out["train"]
    elif "dev" not in out:
        out["train"], out["dev"] = _split_off_dev(out["train"], seed, regression, "the data")
    return TaskData(name=NAME, text_fields=fields, is_regression=regression, label_names=names,
                    train=out["train"], dev=out["dev"], metric="pearson" if regression else "accuracy")
