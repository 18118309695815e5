"""Causal-LM tasks: rows of a prompt and the response a decoder should continue it with.

Two sources:
- a user CSV/TSV/JSONL file (or folder) with a prompt and a response column, e.g.
  {"prompt": "Translate to French: cat\\n", "response": "chat"};
- any classification task posed as prompt -> label word, so a decoder is trained and evaluated on
  real labelled data: glue/sst2 becomes "Review: <sentence>\\nSentiment:" -> " positive".

Rows are {"prompt": str, "response": str, "label": int, "idx": int}. "label" is the class id of a
posed classification task (subsets stay stratified) and 0 for free text (a plain seeded subset).
Plain prompts, no chat template: the same text works for base and instruction-tuned models.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from prunepeft.data.tasks import TaskData, _require_rows, _split_off_dev, _text, _user_files, load_task, read_records
from prunepeft.errors import UserError

CLASSIFICATION, CAUSAL_LM = "classification", "causal-lm"
TASK_TYPES = ("auto", CLASSIFICATION, CAUSAL_LM)
MAIN_METRIC = "exact_match"  # greedy generation equals the response (train/causal_eval.py)
# (prompt, response) column pairs looked for when none is named, in this order
DEFAULT_COLUMNS = (("prompt", "response"), ("prompt", "completion"), ("input", "output"), ("question", "answer"))


@dataclass(frozen=True)
class Verbaliser:
    """How a classification task reads as a prompt: a template whose {0}, {1} are the row's text
    fields in order, and the word each class id answers with (after a space: prompts end in a colon)."""

    template: str
    words: tuple[str, ...]

    def prompt(self, texts: list[str]) -> str:
        return self.template.format(*texts)


_SENTIMENT = Verbaliser("Review: {0}\nSentiment:", ("negative", "positive"))
VERBALISERS = {
    "movie-sentiment": _SENTIMENT,
    "glue/sst2": _SENTIMENT,
    "glue/cola": Verbaliser("Sentence: {0}\nIs this sentence grammatical? Answer:", ("no", "yes")),
    "glue/mrpc": Verbaliser("Sentence 1: {0}\nSentence 2: {1}\nDo they mean the same? Answer:", ("no", "yes")),
    "glue/qqp": Verbaliser("Question 1: {0}\nQuestion 2: {1}\nDo they ask the same? Answer:", ("no", "yes")),
    "glue/mnli": Verbaliser("Premise: {0}\nHypothesis: {1}\nEntailment, neutral or contradiction? Answer:",
                            ("entailment", "neutral", "contradiction")),
    "glue/qnli": Verbaliser("Question: {0}\nSentence: {1}\nDoes the sentence answer the question? Answer:", ("yes", "no")),
    "glue/rte": Verbaliser("Premise: {0}\nHypothesis: {1}\nDoes the premise entail the hypothesis? Answer:", ("yes", "no")),
}


def generic_verbaliser(task: TaskData) -> Verbaliser:
    """For a user's classification file: one 'Column: text' line per text column, then the label name."""
    def title(name: str) -> str:
        return name.replace("_", " ").capitalize().replace("{", "{{").replace("}", "}}")

    lines = [f"{title(f)}: {{{i}}}" for i, f in enumerate(task.text_fields)]
    return Verbaliser("\n".join(lines + ["Answer:"]), tuple(str(n).replace("_", " ") for n in task.label_names))


def pose_as_causal_lm(task: TaskData) -> TaskData:
    """A classification task as prompt -> " <label word>"; exact match of the word is its accuracy."""
    if task.is_regression:
        raise UserError(f"{task.name} is a regression task (a score, not a class): it cannot be posed as prompt -> label word. "
                        "Use --task-type classification, or a prompt/response file")
    verbaliser = VERBALISERS.get(task.name) or generic_verbaliser(task)

    def pose(rows):
        return [{"prompt": verbaliser.prompt([row[f] for f in task.text_fields]), "response": " " + verbaliser.words[row["label"]],
                 "label": row["label"], "idx": row["idx"]} for row in rows] if rows is not None else None

    return replace(task, text_fields=("prompt", "response"), label_names=list(verbaliser.words), train=pose(task.train),
                   dev=pose(task.dev), test=pose(task.test), metric=MAIN_METRIC, task_type=CAUSAL_LM)


def _user_path(task: str) -> Path | None:
    """The file or folder a task names, or None for a built-in task."""
    name = task.strip()
    if name == "movie-sentiment" or name.lower().startswith("glue/"):
        return None
    path = Path(name[5:] if name.startswith("file:") else name).expanduser()
    return path if path.exists() else None


def _columns(path: Path) -> list:
    train_path, _ = _user_files(path)
    records = read_records(train_path)
    return list(records[0].keys()) if records else []


def _pick_columns(columns: list, prompt_column: str | None, response_column: str | None) -> tuple[str, str] | None:
    """The (prompt, response) columns: the named ones (a missing name takes the defaults), else the
    first default pair present; None if none is there."""
    pairs = list(DEFAULT_COLUMNS)
    if prompt_column or response_column:
        prompts = [prompt_column] if prompt_column else [p for p, _ in DEFAULT_COLUMNS]
        responses = [response_column] if response_column else [r for _, r in DEFAULT_COLUMNS]
        pairs = [(p, r) for p in prompts for r in responses]
    return next(((p, r) for p, r in pairs if p in columns and r in columns and p != r), None)


def resolve_task_type(data) -> str:
    """classification or causal-lm for a DataConfig. auto picks causal-lm when the task is a file with
    prompt and response columns and no label column, or when a prompt/response column is named."""
    if data.task_type != "auto":
        return data.task_type
    if data.prompt_column or data.response_column:
        return CAUSAL_LM
    path = _user_path(data.task)
    if path is None:
        return CLASSIFICATION
    columns = _columns(path)
    has_pair = _pick_columns(columns, None, None) is not None
    return CAUSAL_LM if has_pair and (data.label_column or "label") not in columns else CLASSIFICATION


def _load_prompt_response(path: Path, prompt_column: str, response_column: str, seed: int) -> TaskData:
    train_path, dev_path = _user_files(path)
    parts = {"train": (train_path, read_records(train_path))}
    if dev_path is not None:
        parts["dev"] = (dev_path, read_records(dev_path))
    out = {}
    for part, (src, records) in parts.items():
        _require_rows(records, str(src))
        rows = []
        for i, rec in enumerate(records):
            where = f"row {i + 1} of {src}"
            prompt, response = _text(rec, prompt_column, where), _text(rec, response_column, where)
            if not prompt.strip() or not response.strip():
                empty = "prompt" if not prompt.strip() else "response"
                raise UserError(f"{where} has an empty {empty} ({prompt_column if empty == 'prompt' else response_column!r}); "
                                "a causal-LM row needs text in both. Fill in or drop the row")
            rows.append({"prompt": prompt, "response": response, "label": 0, "idx": i})
        out[part] = rows
    if "dev" not in out:
        out["train"], out["dev"] = _split_off_dev(out["train"], seed, False, train_path)
    return TaskData(name=f"file:{path}", text_fields=("prompt", "response"), is_regression=False, label_names=None,
                    train=out["train"], dev=out["dev"], metric=MAIN_METRIC, task_type=CAUSAL_LM)


def load_task_for(data, seed: int = 0) -> TaskData:
    """The task a DataConfig names, as the task type it resolves to (see resolve_task_type)."""
    task_type = resolve_task_type(data)
    if task_type == CLASSIFICATION:
        return load_task(data.task, data.data_dir, text_columns=data.text_columns, label_column=data.label_column, seed=seed)
    path = _user_path(data.task)
    if path is not None:
        columns = _columns(path)
        pair = _pick_columns(columns, data.prompt_column, data.response_column)
        if pair is not None:
            return _load_prompt_response(path, *pair, seed)
        if data.prompt_column or data.response_column or (data.label_column or "label") not in columns:
            wanted = f"{data.prompt_column or 'prompt'!r} and {data.response_column or 'response'!r}"
            raise UserError(f"{path} has no prompt and response columns {wanted} (columns present: {', '.join(map(str, columns))}). "
                            "Pass --prompt-column NAME --response-column NAME, or a label column to pose a classification file")
    return pose_as_causal_lm(load_task(data.task, data.data_dir, text_columns=data.text_columns, label_column=data.label_column, seed=seed))
