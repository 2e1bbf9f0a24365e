"""Copy a trained run's model into the package as a shipped model, with its model card.

The card records what a user needs to trust and reproduce the model: the training data and its
provenance, the recipe (the exact training command), the budget actually spent (steps and wall
minutes, read from the run's metrics.jsonl) and the scores measured by the benchmark scripts.

    python benchmarks/ship_model.py RUN[/checkpoints/step-N] NAME --summary "..." --command "pixelforge train ..." \\
        --scores benchmarks/results/sr-x4.json --limits "..."
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pixelforge import hub, runs

PRETRAINED = Path(__file__).resolve().parents[1] / "src" / "pixelforge" / "pretrained"

CSUN = (
    "CSun_Hays80: 80 scene photos (Hays and Efros), colour versions as collected in the public "
    "repository majedelhelou/denoising_datasets ('collected for convenience, no ownership "
    "claimed'; the original authors hold the rights); random crops at the photos' own resolution"
)


def budget(run: Path, until: int | None = None) -> dict[str, Any]:
    """Steps and wall-clock minutes of the run, from its metrics.jsonl, up to step ``until``
    (a checkpoint's) when given. A resumed run restarts the elapsed clock, so each segment's
    last value is added up."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    if until is not None:
        rows = [row for row in rows if row["step"] <= until]
        rows[-1] = {**rows[-1], "step": until}
    seconds, previous = 0.0, 0.0
    for row in rows:
        if row["elapsed_s"] < previous:  # a new segment (resumed run)
            seconds += previous
        previous = row["elapsed_s"]
    seconds += previous
    return {"steps": rows[-1]["step"], "wall_minutes": round(seconds / 60, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("name")
    parser.add_argument("--summary", required=True)
    parser.add_argument("--command", required=True, help="the exact training command")
    parser.add_argument("--data", default=CSUN)
    parser.add_argument("--limits", default="")
    parser.add_argument("--scores", type=Path, nargs="*", default=[], help="benchmark JSON files")
    parser.add_argument("--machine", default="2 CPU cores shared with other jobs, 1 torch thread")
    parser.add_argument(
        "--budget",
        default=None,
        help="the whole budget, for a model trained in stages (default: this run's, from its metrics)",
    )
    parser.add_argument(
        "--steps-before",
        type=int,
        default=0,
        help="steps of the earlier stages the run started from (--init), added to its own",
    )
    parser.add_argument(
        "--fp16", action="store_true", help="store the weights in float16 (half the size)"
    )
    args = parser.parse_args()
    model = hub.load(args.run)  # a run (its latest checkpoint) or one checkpoint of a run
    run, until = args.run, None
    if not (run / runs.RUN_FILE).is_file():  # RUN/checkpoints/step-NNNNNNNN
        run, until = args.run.parent.parent, int(args.run.name.rpartition("-")[2])
    if args.fp16:  # loading casts them back to float32; re-measure the scores after
        model = model.half()
    spent = budget(run, until)
    scores = {p.stem: json.loads(p.read_text())["result"] for p in args.scores}
    card = {
        "summary": args.summary,
        "data": args.data,
        "recipe": args.command,
        "steps": args.steps_before + spent["steps"],
        "budget": args.budget or f"{spent['wall_minutes']} minutes of wall time on {args.machine}",
        "scores": {k: _means(v) for k, v in scores.items()},
        "scores_command": "see docs/benchmarks.md (Restoration)",
        "limits": args.limits,
        "weights_dtype": "float16 (computed in float32)" if args.fp16 else "float32",
        "run_config": json.loads((run / runs.RUN_FILE).read_text())["config"],
    }
    out = hub.save_model(model, PRETRAINED / args.name, card=card)
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    print(json.dumps({"wrote": str(out), "megabytes": round(size, 2), "card": card}, indent=1))


def _means(result: Any) -> Any:
    """Keep the summary numbers of a benchmark result, not the per-image rows."""
    if isinstance(result, dict):
        return {k: _means(v) for k, v in result.items() if k != "images"}
    return round(result, 3) if isinstance(result, float) else result


if __name__ == "__main__":
    main()
