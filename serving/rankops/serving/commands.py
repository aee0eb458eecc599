"""Subcommands of `rankops` contributed by rankops.serving."""

from __future__ import annotations

import argparse
import os
from typing import Any

from rankops.serving import chore_commands
from rankops.serving.cli_args import (
    SEMVER_PATTERN,
    add_dataset,
    add_feedback_log,
    add_split,
    add_training,
    check_semver,
    positive_int,
    unit_interval,
)

__all__ = ["SEMVER_PATTERN", "register", "serve_port"]

DEFAULT_PORT = 8080


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add this package's subcommands to the top-level parser."""
    register_serve(subparsers)
    register_train(subparsers)
    register_evaluate(subparsers)
    register_import_mapping(subparsers)
    register_report(subparsers)
    register_retrain(subparsers)
    chore_commands.register(subparsers)


def register_serve(subparsers: argparse._SubParsersAction[Any]) -> None:
    """`rankops serve`: the ranking service (rankops.serving.app) under uvicorn."""
    import os

    p = subparsers.add_parser(
        "serve",
        help="serve a model artifact over HTTP (ranking, feedback, metrics)",
        description="Serve the model artifact at --model with uvicorn. Identity labels come from "
        "RANKOPS_MODEL, RANKOPS_VERSION (default: the manifest's) and RANKOPS_TRACK; the port from "
        "--port, else RANKOPS_PORT. A model with a sentence encoder: query precision from "
        "RANKOPS_ENCODER_PRECISION (fp32, int8 or static; default: the trained one); concurrent "
        "requests share encoder passes of up to RANKOPS_QUERY_BATCH queries (default 4; 1: a pass "
        "per query).",
    )
    p.add_argument(
        "--model",
        default=os.environ.get("RANKOPS_MODEL_URI"),
        help="artifact URI (any fsspec URI; default: $RANKOPS_MODEL_URI)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument(
        "--port", type=int, default=None, help=f"port to bind (default: $RANKOPS_PORT, else {DEFAULT_PORT})"
    )
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default: %(default)s)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--no-cache", action="store_true", help="disable the result cache")
    add_feedback_log(
        p,
        "durable feedback log: an fsspec URI or path where every served ranking and accepted "
        "feedback is appended (default: $RANKOPS_FEEDBACK_LOG; none when unset). A crash loses at most "
        "$RANKOPS_FEEDBACK_LOG_MAX_UNFLUSHED (2000) acknowledged feedback records, in steady state "
        "those of the last $RANKOPS_FEEDBACK_LOG_FLUSH_S (1 s)",
    )
    p.set_defaults(func=_serve)


def serve_port(flag: int | None) -> int:
    """``--port``, else ``$RANKOPS_PORT`` (what the operator sets on its pods), else 8080."""
    import os

    if flag is not None:
        return flag
    raw = os.environ.get("RANKOPS_PORT", "").strip()
    if not raw:
        return DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"RANKOPS_PORT must be a port number (0..65535), got {raw!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"RANKOPS_PORT must be a port number (0..65535), got {raw!r}")
    return port


def _serve(args: argparse.Namespace) -> int:
    from rankops.serving.encoder import query_batch
    from rankops.serving.server import serve
    from rankops.serving.settings import ServiceSettings

    if not args.model:
        raise ValueError("no model: pass --model URI or set RANKOPS_MODEL_URI")
    # a bad $RANKOPS_QUERY_BATCH or $RANKOPS_<SETTING> fails here, not when the model loads
    query_batch()
    ServiceSettings.from_env(os.environ)
    return serve(
        args.model,
        host=args.host,
        port=serve_port(args.port),
        workers=args.workers,
        log_level=args.log_level,
        cache=not args.no_cache,
        feedback_log=args.feedback_log,
    )


# ---------------------------------------------------------------- train / evaluate / import-mapping


def register_train(subparsers: argparse._SubParsersAction[Any]) -> None:
    """`rankops train`: train the ranking model and write a versioned artifact."""
    p = subparsers.add_parser(
        "train",
        help="train the ranking model on a BEIR dataset and write a model artifact",
        description="Train on qrels/train.tsv (dev picks the epoch), evaluate model and BM25 on dev/test, "
        "and write weights, catalogue, golden set, drift reference and manifest.json to --out. "
        "Torch threads: $RANKOPS_TORCH_THREADS (default 1).",
    )
    add_dataset(p)
    p.add_argument("--out", required=True, help="artifact URI to write (path, file://, s3://...)")
    p.add_argument("--version", required=True, help="model version (semver, e.g. 1.0.0)")
    add_training(p)
    p.add_argument("--parent-version", default=None, help="version this one was derived from")
    p.add_argument(
        "--name", default="dataset-ranker", help="model name in the manifest (default: %(default)s)"
    )
    p.add_argument(
        "--query-encoder",
        choices=("fp32", "int8", "static", "none"),
        default="fp32",
        help="query encoder the model is trained with: all-MiniLM-L6-v2 (fp32, int8), a static "
        "encoder distilled from it (~0.1 ms a query instead of ~1.7 ms int8, ~2.9 ms fp32), or none "
        "(lexical and metadata signals only) (default: %(default)s)",
    )
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from rankops.serving.train import DEFAULT_EPOCHS
    from rankops.serving.training_run import train_command

    check_semver(args.version)
    if args.parent_version is not None and args.parent_version == args.version:
        raise ValueError("--parent-version must differ from --version")
    train_command(
        args.data,
        args.out,
        args.version,
        epochs=args.epochs or DEFAULT_EPOCHS,
        seed=args.seed,
        parent_version=args.parent_version,
        name=args.name,
        force=args.force,
        query_encoder=args.query_encoder,
    )
    return 0


def register_evaluate(subparsers: argparse._SubParsersAction[Any]) -> None:
    """`rankops evaluate`: model vs BM25 metrics on one split, as one JSON object on stdout."""
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a model artifact and the BM25 baseline on a dataset split (JSON on stdout)",
        description="Print {split, queries, model: {ndcg@3, ndcg@10, mrr, p@3}, bm25: {...}} as one JSON "
        "object. Metrics follow trec_eval: linear gain, log2 discount, ideal DCG from all judged "
        "documents; P@3 and MRR count grade >= 1 as relevant.",
    )
    p.add_argument("--model", required=True, help="artifact URI")
    add_dataset(p)
    add_split(p, "test")
    p.add_argument("--no-verify", action="store_true", help="skip the artifact digest check")
    p.add_argument(
        "--record",
        action="store_true",
        help="also write the result as <model>/evaluations/<UTC time>-<split>.json (manifest untouched)",
    )
    p.add_argument(
        "--min-ndcg", type=float, default=None, help="exit 1 when the model's NDCG@3 is below this"
    )
    p.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    import json
    import sys

    from rankops.serving.artifact import ArtifactIntegrityError
    from rankops.serving.evaluate import evaluate_command
    from rankops.serving.evaluation_record import local_dataset, record_evaluation

    try:
        with local_dataset(args.data) as data:
            result = evaluate_command(args.model, str(data), args.split, verify=not args.no_verify)
    except ArtifactIntegrityError as exc:
        raise ValueError(str(exc)) from exc
    if args.record:
        result["recorded"] = record_evaluation(args.model, result, data=args.data)
        print(f"recorded {result['recorded']}", file=sys.stderr)
    json.dump(result, sys.stdout, sort_keys=False)
    sys.stdout.write("\n")
    if args.min_ndcg is not None and result["model"]["ndcg@3"] < args.min_ndcg:
        print(f"NDCG@3 {result['model']['ndcg@3']} is below --min-ndcg {args.min_ndcg}", file=sys.stderr)
        return 1
    return 0


def register_import_mapping(subparsers: argparse._SubParsersAction[Any]) -> None:
    """`rankops import-mapping`: runbook mapping lines into BEIR queries + qrels."""
    p = subparsers.add_parser(
        "import-mapping",
        help="import runbook 'query -> source (score)' lines into a BEIR dataset",
        description="Each line 'QUERY → SOURCE (SCORE)' (or '->'), '#' starts a comment. The score in "
        "[0, 1] becomes grade round(4 * score); the grade goes to the --per-source catalogue items "
        "of that source that BM25 ranks highest for the query. Appends to queries.jsonl and "
        "qrels/SPLIT.tsv of --data (which must hold corpus.jsonl).",
    )
    p.add_argument("file", help="mapping file")
    add_dataset(p)
    add_split(p, "train")
    p.add_argument(
        "--per-source",
        type=positive_int,
        default=3,
        help="items of the named source judged per line (default: %(default)s)",
    )
    p.set_defaults(func=_import_mapping)


def _import_mapping(args: argparse.Namespace) -> int:
    import sys

    from rankops.serving.mapping_import import import_mapping_file

    summary = import_mapping_file(args.file, args.data, split=args.split, per_source=args.per_source)
    print(
        f"imported {summary.lines} lines: {summary.new_queries} new queries, {summary.qrels} judgments "
        f"into {args.data} (split {args.split})",
        file=sys.stderr,
    )
    return 0


def register_report(subparsers: argparse._SubParsersAction[Any]) -> None:
    """`rankops report`: the runbook's weekly or quarterly quality report from the feedback log."""
    p = subparsers.add_parser(
        "report",
        help="write the weekly or quarterly quality report (JSON and an NDCG@3-per-domain chart)",
        description="Read the feedback log and write quality-report-TYPE.json (report_summary, "
        "domain_performance, quality_improvements, details) and ndcg-by-domain-TYPE.png to --out.",
    )
    p.add_argument("--type", required=True, choices=["weekly", "quarterly"], dest="report_type")
    p.add_argument("--out", required=True, help="output directory")
    add_feedback_log(p, "the feedback log to read (default: $RANKOPS_FEEDBACK_LOG)")
    p.add_argument(
        "--quality-threshold", type=float, default=0.7, help="NDCG@3 target (default: %(default)s)"
    )
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    import sys

    from rankops.serving.report import report_command

    if not args.feedback_log:
        raise ValueError("no feedback log: pass --feedback-log URI or set RANKOPS_FEEDBACK_LOG")
    if not 0.0 <= args.quality_threshold <= 1.0:
        raise ValueError(f"--quality-threshold must be within 0..1, got {args.quality_threshold}")
    json_path, png_path = report_command(
        args.feedback_log, args.report_type, args.out, threshold=args.quality_threshold
    )
    print(f"wrote {json_path} and {png_path}", file=sys.stderr)
    return 0


def register_retrain(subparsers: argparse._SubParsersAction[Any]) -> None:
    """`rankops retrain`: a candidate from base data + feedback, behind the beats-the-parent gate."""
    p = subparsers.add_parser(
        "retrain",
        help="train a candidate on the base dataset plus the feedback since the parent, and gate it",
        description="Train a candidate on --data's train split plus the feedback logged since the parent "
        "(--model) was created (feedback on dev/test queries is dropped), then judge candidate and parent "
        "on the test split: the gate passes when mean NDCG@3 improves by --margin with a one-sided paired "
        "t-test at --alpha and the median rank latency ratio is <= --max-latency-ratio. Writes the "
        "candidate to --out either way (manifest 'retrain.status' passed/failed); prints one JSON line; "
        "exit 0 passed, 1 failed, 2 bad input.",
    )
    p.add_argument("--model", required=True, help="the parent (serving) artifact URI")
    add_dataset(p, "the base dataset directory in BEIR layout")
    add_feedback_log(p, "the durable feedback log to read (default: $RANKOPS_FEEDBACK_LOG)")
    p.add_argument("--out", required=True, help="candidate artifact URI to write")
    p.add_argument("--version", required=True, help="candidate version (semver)")
    p.add_argument("--margin", type=float, default=0.0, help="required NDCG@3 gain (default: %(default)s)")
    p.add_argument("--alpha", type=float, default=0.05, help="paired test level (default: %(default)s)")
    p.add_argument(
        "--max-latency-ratio",
        type=float,
        default=1.5,
        help="candidate/parent median rank latency bound (default: %(default)s)",
    )
    p.add_argument(
        "--min-golden-ndcg",
        type=unit_interval,
        default=None,
        help="fail the gate when the candidate's NDCG@3 on its golden set is below this (default: no floor)",
    )
    add_training(p)
    p.set_defaults(func=_retrain)


def _retrain(args: argparse.Namespace) -> int:
    import json
    import sys

    from rankops.serving.artifact import ArtifactIntegrityError
    from rankops.serving.gate import GateConfig
    from rankops.serving.retrain import retrain_command
    from rankops.serving.train import DEFAULT_EPOCHS

    if not args.feedback_log:
        raise ValueError("no feedback log: pass --feedback-log URI or set RANKOPS_FEEDBACK_LOG")
    check_semver(args.version)
    gate = GateConfig(
        margin=args.margin,
        alpha=args.alpha,
        max_latency_ratio=args.max_latency_ratio,
        min_golden_ndcg=args.min_golden_ndcg,
    )
    try:
        result, manifest = retrain_command(
            args.model,
            args.data,
            args.feedback_log,
            args.out,
            args.version,
            gate=gate,
            epochs=args.epochs or DEFAULT_EPOCHS,
            seed=args.seed,
            force=args.force,
        )
    except ArtifactIntegrityError as exc:
        raise ValueError(str(exc)) from exc
    retrain = manifest["retrain"]
    line = {
        "candidate": {"uri": args.out, "version": args.version},
        "parent": retrain["parent"],
        "feedback_window": retrain["feedback_window"],
        "gate": retrain["gate"],
    }
    json.dump(line, sys.stdout)
    sys.stdout.write("\n")
    return 0 if result.passed else 1
