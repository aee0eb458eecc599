"""The demo's model versions, trained on the fly from the bundled dataset and cached.

Each version is a recipe (epochs, training data, seed); its artifact lives in
``<cache>/<version>`` with the recipe beside it (``recipe.json``), and is trained again only
when the recipe or the dataset changes. Version 3.0.0 learns from corrupted labels: the
training judgments' items are shuffled across the training rows and there is no dev split (a
broken labelling pipeline has no clean dev set to pick a lucky early epoch with: the trainer
keeps the last epoch); test stays true, so its held-out quality is honestly bad.
Version 4.0.0 is trained on labelled queries that lost one category
(:func:`without_domain_queries`: no ``machine_learning`` query in train or dev): its domain
head never learns that domain, so it ranks every other domain about as well as 2.0.0 and its
canary passes on the everyday query mix, but it ranks ``machine_learning`` items poorly, which
shows only once those queries become frequent. (Tried and left: mislabelling that domain's
judgments hurts every domain, its queries share words and sources with the rest; dropping its
items from the catalogue makes the pods refuse feedback naming them, 422, so no quality is
measured at all.) Training runs ``rankops train`` as a process, as a Job would.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from rankops.serving.dataset import dataset_digest

__all__ = [
    "DEMO_VERSIONS",
    "WEAK_DOMAIN",
    "Recipe",
    "corrupt_labels",
    "ensure_versions",
    "query_domains",
    "without_domain_queries",
]


@dataclass(frozen=True)
class Recipe:
    version: str
    epochs: int
    data: str  # "bundled", "corrupted" or "without-domain"
    seed: int = 13
    parent: str | None = None
    about: str = ""


DEMO_VERSIONS = (
    Recipe("1.0.0", epochs=2, data="bundled", about="a first model, briefly trained"),
    Recipe("2.0.0", epochs=10, data="bundled", parent="1.0.0", about="trained longer: better"),
    Recipe("3.0.0", epochs=4, data="corrupted", parent="2.0.0", about="trained on shuffled labels"),
    Recipe(
        "4.0.0",
        epochs=10,
        data="without-domain",
        parent="2.0.0",
        about="its training data lost the machine_learning queries",
    ),
)
WEAK_DOMAIN = "machine_learning"


def corrupt_labels(data: Path, out: Path, seed: int = 5) -> Path:
    """A copy of the BEIR dataset at ``data`` whose training judgments point at random items."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        shutil.copyfile(data / name, out / name)
    (out / "qrels").mkdir(exist_ok=True)
    shutil.copyfile(data / "qrels" / "test.tsv", out / "qrels" / "test.tsv")
    (out / "qrels" / "dev.tsv").unlink(missing_ok=True)
    header, *rows = (data / "qrels" / "train.tsv").read_text().splitlines()
    cells = [r.split("\t") for r in rows if r.strip()]
    items = [c[1] for c in cells]
    random.Random(seed).shuffle(items)
    lines = [header, *("\t".join((c[0], item, c[2])) for c, item in zip(cells, items, strict=True))]
    (out / "qrels" / "train.tsv").write_text("\n".join(lines) + "\n")
    return out


def _item_domains(data: Path) -> dict[str, str]:
    out = {}
    with open(data / "corpus.jsonl") as corpus:
        for line in corpus:
            if line.strip():
                item = json.loads(line)
                out[str(item["_id"])] = str((item.get("metadata") or {}).get("domain", ""))
    return out


def query_domains(data: Path, split: str) -> dict[str, str]:
    """Query id -> the domain of its best-graded item, for the judged queries of ``split``."""
    items = _item_domains(data)
    best: dict[str, tuple[int, str]] = {}
    _, *rows = (data / "qrels" / f"{split}.tsv").read_text().splitlines()
    for row in rows:
        cells = row.split("\t")
        if len(cells) < 3:
            continue
        grade = int(cells[2])
        if grade > best.get(cells[0], (0, ""))[0]:
            best[cells[0]] = (grade, items.get(cells[1], ""))
    return {q: domain for q, (_, domain) in best.items()}


def without_domain_queries(data: Path, out: Path, domain: str = WEAK_DOMAIN) -> Path:
    """A copy of the BEIR dataset at ``data`` whose train and dev judgments leave out every
    query of ``domain`` (an export of the labelled queries that lost one category); the
    catalogue and the test split stay whole, so the test still asks for that domain."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        shutil.copyfile(data / name, out / name)
    (out / "qrels").mkdir(exist_ok=True)
    shutil.copyfile(data / "qrels" / "test.tsv", out / "qrels" / "test.tsv")
    for split in ("train", "dev"):
        if not (data / "qrels" / f"{split}.tsv").is_file():
            continue
        domains = query_domains(data, split)
        header, *rows = (data / "qrels" / f"{split}.tsv").read_text().splitlines()
        kept = [r for r in rows if domains.get(r.split("\t")[0]) != domain]
        (out / "qrels" / f"{split}.tsv").write_text("\n".join([header, *kept]) + "\n")
    return out


def _digest(data: Path) -> str:
    digest, _ = dataset_digest(str(data))
    return str(digest)


def ensure_versions(
    data: Path,
    cache: Path,
    recipes: tuple[Recipe, ...] = DEMO_VERSIONS,
    log: Callable[[str], None] = print,
) -> dict[str, Path]:
    """Artifact directory per version, training the ones the cache lacks."""
    cache.mkdir(parents=True, exist_ok=True)
    sources = {"bundled": data}
    if any(r.data == "corrupted" for r in recipes):
        sources["corrupted"] = corrupt_labels(data, cache / "data-corrupted")
    if any(r.data == "without-domain" for r in recipes):
        sources["without-domain"] = without_domain_queries(data, cache / "data-without-domain")
    digests = {name: _digest(path) for name, path in sources.items()}
    out: dict[str, Path] = {}
    todo: list[tuple[Recipe, Path, dict[str, object], str]] = []
    for recipe in recipes:
        target = cache / recipe.version
        # the model format is part of the key: an artifact of an older ranker is trained again
        wanted = {**asdict(recipe), "dataset": digests[recipe.data], "format": _model_format()}
        key = hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:12]
        recipe_file = cache / f"{recipe.version}.recipe.json"
        cached = (target / "manifest.json").is_file() and recipe_file.is_file()
        out[recipe.version] = target
        if not (cached and json.loads(recipe_file.read_text()).get("key") == key):
            todo.append((recipe, target, wanted, key))

    def train(recipe: Recipe, target: Path, wanted: dict[str, object], key: str) -> None:
        log(f"training {recipe.version} ({recipe.about}: {recipe.epochs} epochs on {recipe.data} data)")
        argv = [sys.executable, "-m", "rankops.cli", "train", "--data", str(sources[recipe.data])]
        argv += ["--out", str(target), "--version", recipe.version, "--epochs", str(recipe.epochs)]
        argv += ["--seed", str(recipe.seed), "--force"]
        if recipe.parent:
            argv += ["--parent-version", recipe.parent]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"training {recipe.version} failed: {done.stderr[-2000:]}")
        (cache / f"{recipe.version}.recipe.json").write_text(json.dumps({"key": key, **wanted}, indent=1))

    # one training process per core (each runs one torch thread): the versions are independent;
    # the longest first, so the short ones fill in beside them (the whole ends sooner)
    todo.sort(key=lambda job: -job[0].epochs)
    with ThreadPoolExecutor(max_workers=max(1, min(len(todo), os.cpu_count() or 1))) as pool:
        for future in [pool.submit(train, *job) for job in todo]:
            future.result()
    return out


def _model_format() -> int:
    from rankops.serving.model import MODEL_FORMAT  # torch comes with it: imported only here

    return MODEL_FORMAT
