"""The demo's model versions, trained on the fly from the bundled dataset and cached.

Each version is a recipe (epochs, training data, seed); its artifact lives in
``<cache>/<version>`` with the recipe beside it (``recipe.json``), and is trained again only
when the recipe or the dataset changes. Version 3.0.0 learns from corrupted labels: the
training judgments' items are shuffled across the training rows and there is no dev split (a
broken labelling pipeline has no clean dev set to pick a lucky early epoch with: the trainer
keeps the last epoch); test stays true, so its held-out quality is honestly bad.
Training runs ``rankops train`` as a process, as a Job would.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from rankops.serving.dataset import dataset_digest

__all__ = ["DEMO_VERSIONS", "Recipe", "corrupt_labels", "ensure_versions"]


@dataclass(frozen=True)
class Recipe:
    version: str
    epochs: int
    data: str  # "bundled" or "corrupted"
    seed: int = 13
    parent: str | None = None
    about: str = ""


DEMO_VERSIONS = (
    Recipe("1.0.0", epochs=2, data="bundled", about="a first model, briefly trained"),
    Recipe("2.0.0", epochs=10, data="bundled", parent="1.0.0", about="trained longer: better"),
    Recipe("3.0.0", epochs=4, data="corrupted", parent="2.0.0", about="trained on shuffled labels"),
)


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
    digests = {name: _digest(path) for name, path in sources.items()}
    out: dict[str, Path] = {}
    for recipe in recipes:
        target = cache / recipe.version
        wanted = {**asdict(recipe), "dataset": digests[recipe.data]}
        key = hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:12]
        recipe_file = cache / f"{recipe.version}.recipe.json"
        cached = (target / "manifest.json").is_file() and recipe_file.is_file()
        if cached and json.loads(recipe_file.read_text()).get("key") == key:
            out[recipe.version] = target
            continue
        log(f"training {recipe.version} ({recipe.about}: {recipe.epochs} epochs on {recipe.data} data)")
        argv = [sys.executable, "-m", "rankops.cli", "train", "--data", str(sources[recipe.data])]
        argv += ["--out", str(target), "--version", recipe.version, "--epochs", str(recipe.epochs)]
        argv += ["--seed", str(recipe.seed), "--force"]
        if recipe.parent:
            argv += ["--parent-version", recipe.parent]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"training {recipe.version} failed: {done.stderr[-2000:]}")
        recipe_file.write_text(json.dumps({"key": key, **wanted}, indent=1))
        out[recipe.version] = target
    return out
