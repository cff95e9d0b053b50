"""`make report`: reports/report.md and report.html with PNG plots, from the run records and the
latest run's Train results, so a competitor looks at pictures instead of reading logs."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import PROJECT_ROOT, cache_dir, shown
from ..errors import ConfigError
from ..storage.cache import atomic_file, mirrored, shared
from .submit import lb_state

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

DPI = 100


class Section:
    """A heading, a paragraph and (usually) one plot."""

    def __init__(self, title: str, text: str | list[list[str]], image: str | None = None) -> None:
        self.title, self.text, self.image = title, text, image


def write_report(records: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Write the plots and both documents into folder; return the documents' paths."""
    if not records:
        raise ConfigError("no run records in runs/ yet: run `make all` first, then `make report`")
    latest = records[0]
    recorded = PROJECT_ROOT / train_folder(latest)
    train = mirrored(cache_dir() / recorded.parent.name / recorded.name) if shared() else recorded
    plots: list[tuple[str, str, str, Callable[[], Figure | None]]] = [
        ("Per-fold scores", "fold_scores.png", _fold_text(latest), lambda: fold_scores(latest)),
        ("CV across runs", "cv_over_time.png", _runs_text(records), lambda: cv_over_time(records)),
        (
            "Feature importance",
            "importance.png",
            "How much each fold's score worsens when one column is shuffled among its held-out rows "
            "(mean over folds; the bar's colour is the feature task that made the column).",
            lambda: importance(_table(train, "importance")),
        ),
        (
            "Out-of-fold predictions",
            "oof.png",
            "Each train row's prediction by the model that did not see it, against its target.",
            lambda: oof(_table(train, "oof"), latest),
        ),
    ]
    sections = [Section("Runs", runs_table(records)), *models_sections(records)]
    for title, name, text, draw in plots:
        figure = draw()
        if figure is None:
            (folder / name).unlink(missing_ok=True)  # an older report's plot would show another run
            sections.append(Section(title, f"{text} (no data for the latest run)"))
            continue
        with atomic_file(folder / name) as tmp:  # a bare Figure renders with Agg: no display, no pyplot state
            figure.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
        sections.append(Section(title, text, name))
    title = f"Runs report: latest run {latest['run_id']}"
    written = []
    for name, render in (("report.md", markdown), ("report.html", html_page)):
        with atomic_file(folder / name) as tmp:
            tmp.write_text(render(title, sections))
        written.append(folder / name)
    return written


def train_folder(record: dict[str, Any]) -> str:
    """The folder of the Train result a record scores: the record's model's (a blend: its first
    component's; records older than the model registry: the one Train)."""
    tasks = record["tasks"]
    if "Train" in tasks:
        return tasks["Train"]["folder"]
    trains = {name: task for name, task in tasks.items() if name.startswith("Train ")}
    wanted = record.get("model")
    for name, task in trains.items():
        if f"model={wanted}" in name.split():
            return task["folder"]
    return next(iter(trains.values()))["folder"]


def models_sections(records: list[dict[str, Any]]) -> list[Section]:
    """The models side by side (each model's latest run: CV per fold and overall), the latest run's
    targets (several target columns) and the latest blend's weights."""
    latest: dict[str, dict[str, Any]] = {}
    latest_record = records[0]
    for record in records:  # newest first
        latest.setdefault(record.get("model") or "hgb", record)
    sections = []
    if len(latest) > 1:
        n_folds = max(len(r["cv"]["folds"]) for r in latest.values())
        header = ["model", "run", "CV", *(f"fold {k}" for k in range(n_folds))]
        rows = [
            [model, r["run_id"], f"{r['cv']['score']:.5f}", *(f"{score:.5f}" for score in r["cv"]["folds"])]
            for model, r in latest.items()
        ]
        sections.append(Section("Models side by side", [header, *rows]))
    targets = latest_record.get("cv", {}).get("targets")
    if targets:  # several target columns: each one's CV and fold scores, the CV their mean
        n_folds = max(len(t["folds"]) for t in targets.values())
        header = ["target", "CV", *(f"fold {k}" for k in range(n_folds))]
        rows = [[name, f"{t['score']:.5f}", *(f"{s:.5f}" for s in t["folds"])] for name, t in targets.items()]
        title = f"Targets (run {latest_record['run_id']}: CV {latest_record['cv']['score']:.5f} is their mean)"
        sections.append(Section(title, [header, *rows]))
    blended = next((r for r in records if r.get("blend")), None)
    if blended is not None:
        blend = blended["blend"]
        runs = blend.get("runs", {})
        rows = [
            [name, f"{weight:.3f}", blend["components"][name][:8], runs.get(name, "")]
            for name, weight in blend["weights"].items()
        ]
        title = f"Blend weights ({blend.get('method', 'weights')}, run {blended['run_id']})"
        sections.append(Section(title, [["model", "weight", "Train hash", "model's run"], *rows]))
    return sections


def _table(folder: Path, name: str) -> pd.DataFrame | None:
    import pandas as pd

    path = folder / f"{name}.parquet"
    return pd.read_parquet(path) if path.is_file() else None


def _fold_text(record: dict[str, Any]) -> str:
    cv = record["cv"]
    return f"Run {record['run_id']}: {cv['metric']} per fold; the line is the overall CV score {cv['score']:.5f}."


def _runs_text(records: list[dict[str, Any]]) -> str:
    known = sum(r.get("lb") is not None for r in records)
    return f"CV score of each run by time ({len(records)} runs); leaderboard scores where known ({known})."


# --- plots ------------------------------------------------------------------------------------


def _figure(width: float = 7.0, height: float = 4.0):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.add_subplot()


def fold_scores(record: dict[str, Any]) -> Figure:
    cv = record["cv"]
    figure, axes = _figure()
    folds = range(len(cv["folds"]))
    axes.bar(folds, cv["folds"], color="tab:blue")
    axes.axhline(cv["score"], color="tab:red", label=f"CV {cv['score']:.5f}")
    low, high = min(cv["folds"]), max(cv["folds"])
    margin = (high - low) or abs(high) * 0.01 or 0.01
    axes.set_ylim(low - margin, high + margin)
    axes.set(xlabel="fold", ylabel=cv["metric"], xticks=list(folds), title=f"Per-fold {cv['metric']}")
    axes.legend()
    return figure


def cv_over_time(records: list[dict[str, Any]]) -> Figure:
    from datetime import datetime

    metric = records[0]["cv"]["metric"]
    same = sorted((r for r in records if r["cv"]["metric"] == metric), key=lambda r: r["run_id"])
    times = [datetime.fromisoformat(r["time_utc"]) for r in same]
    figure, axes = _figure()
    axes.plot(times, [r["cv"]["score"] for r in same], "o-", label="CV")
    scored = [(t, r["lb"]["score"]) for t, r in zip(times, same, strict=True) if r.get("lb")]
    if scored:
        axes.plot(*zip(*scored, strict=True), "s", color="tab:orange", label="leaderboard")
    axes.set(xlabel="run time (UTC)", ylabel=metric, title=f"{metric} across runs")
    axes.legend()
    figure.autofmt_xdate()
    return figure


def importance(table: pd.DataFrame | None, top: int = 30) -> Figure | None:
    if table is None or table.empty:
        return None
    shown_rows = table.head(top).iloc[::-1]
    features = list(dict.fromkeys(table["feature"].fillna("?")))
    colours = {name: f"C{i % 10}" for i, name in enumerate(features)}
    figure, axes = _figure(7.0, max(3.0, 0.25 * len(shown_rows) + 1))
    axes.barh(
        shown_rows["column"].astype(str),
        shown_rows["importance"],
        xerr=shown_rows["std"].fillna(0),
        color=[colours[f] for f in shown_rows["feature"].fillna("?")],
    )
    from matplotlib.patches import Patch

    axes.axvline(0, color="black", linewidth=0.5)
    axes.set(xlabel="score lost when shuffled", title=f"Permutation importance (top {len(shown_rows)})")
    axes.legend(handles=[Patch(color=c, label=n) for n, c in colours.items()], fontsize="small")
    return figure


def oof(table: pd.DataFrame | None, record: dict[str, Any]) -> Figure | None:
    """Regression: prediction against target. Classification: the probability given to the true
    class, one histogram per class (good models pile up near 1)."""
    if table is None or table.empty:
        return None
    import numpy as np

    competition = record["params"]["config"]["competition"]
    if competition["target_column"] not in table:  # several targets: oof holds predictions alone
        return None
    target = table[competition["target_column"]]
    figure, axes = _figure()
    if competition["problem_type"] == "regression":
        axes.scatter(target, table["prediction"], s=8, alpha=0.5)
        low, high = (
            float(min(target.min(), table["prediction"].min())),
            float(max(target.max(), table["prediction"].max())),
        )
        axes.plot([low, high], [low, high], color="tab:red", linewidth=1, label="prediction = target")
        axes.set(xlabel="target", ylabel="out-of-fold prediction", title="Out-of-fold predictions")
        axes.legend()
        return figure
    classes = sorted(target.unique().tolist())
    if "prediction" in table:  # binary: P(positive), the positive class is the larger label
        true_class = np.where(target == classes[-1], table["prediction"], 1 - table["prediction"])
    else:
        columns = [str(label) for label in classes]
        chosen = [columns.index(str(label)) for label in target]
        true_class = table[columns].to_numpy(dtype=float)[np.arange(len(table)), chosen]
    for label in classes:
        axes.hist(true_class[(target == label).to_numpy()], bins=20, range=(0, 1), alpha=0.6, label=str(label))
    axes.set(xlabel="out-of-fold probability of the true class", ylabel="rows", title="Out-of-fold predictions")
    axes.legend(title=competition["target_column"])
    return figure


# --- documents --------------------------------------------------------------------------------


def _row(record: dict[str, Any]) -> list[str]:
    git, cv = record["git"], record["cv"]
    commit = (git.get("commit") or "-")[:8] + ("+dirty" if git.get("dirty") else "")
    return [
        record["run_id"],
        record["time_utc"].replace("T", " ")[:16],
        commit,
        f"{cv['metric']} {cv['score']:.5f}",
        lb_state(record),
        str(record["params"].get("seed")),
        record["submission"]["path"] if record.get("submission") else "",
    ]


HEADER = ["run", "time (UTC)", "commit", "CV", "LB", "seed", "submission"]


def runs_table(records: list[dict[str, Any]]) -> list[list[str]]:
    return [HEADER, *(_row(r) for r in records)]


def markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        if isinstance(section.text, list):
            header, *rows = section.text
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
        else:
            lines.append(section.text)
        if section.image:
            lines += ["", f"![{section.title}]({section.image})"]
        lines.append("")
    return "\n".join(lines)


def html_page(title: str, sections: list[Section]) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        if isinstance(section.text, list):
            header, *rows = section.text
            cells = "".join(f"<th>{html.escape(c)}</th>" for c in header)
            body.append(f"<table><tr>{cells}</tr>")
            body += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows]
            body.append("</table>")
        else:
            body.append(f"<p>{html.escape(section.text)}</p>")
        if section.image:
            body.append(f'<img src="{html.escape(section.image)}" alt="{html.escape(section.title)}">')
    style = "body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:0 .6em;text-align:left}"
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def where(paths: list[Path]) -> str:
    return ", ".join(shown(path) for path in paths)
