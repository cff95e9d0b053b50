"""Quality figures: the generated pipeline on an Outbrain-shaped competition of its own making, scored
by MAP@12 with a ranked submission, against ranking each display's ads by the ad's smoothed click rate.

The competition is deterministic from --seed. Advertisers run campaigns, campaigns run ads; a display
shows 2 to 12 ads on a page of some category, and exactly one is clicked, drawn by a multinomial logit
of the ad's appeal: its advertiser's, its campaign's and its own, how well its advertiser does on the
display's platform, and whether the ad's landing page shares the page's category. Ads are shown with
Zipf-like frequency, so many are rare and their own click rate says little. Tables, as Outbrain's:
clicks_train / clicks_test (display_id, ad_id; clicked in train), events (display_id, document_id,
platform), promoted_content (ad_id, document_id, campaign_id, advertiser_id), documents_categories
(document_id, category_id) and sample_submission (display_id, ad_id: the display's ads, space-separated).

A share of the displays (--held-back) are held back: they are the competition's test rows, and their
clicks, kept by the benchmark, score the submission. In one run it prints the pipeline's CV MAP@12 and
its MAP@12 on the held-back displays, the baseline's (out of fold on the pipeline's own folds, and on
the held-back displays from all of train), and the ceiling: the held-back displays ranked by the
appeal their clicks were drawn from (the noise of the draw is what no model can learn).

Usage: python bench/outbrain.py [--displays N] [--held-back 0.2] [--seed 0] [--folds 5] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from large import bake

MODULE = "kaggle_competition"
K = 12
SMOOTHING = 20.0  # the baseline's prior weight, in views of the average ad

CONFIG = {
    "competition": {
        "train": "clicks_train",
        "test": "clicks_test",
        "id_column": "display_id ad_id",
        "target_column": "clicked",
        "metric": f"map@{K}",
        "group_column": "display_id",
    },
    "submission": {"format": "ranked", "top_k": str(K)},
    "train": {"importance_repeats": "0"},
}

FEATURES = '''"""Features of an Outbrain-shaped competition (bench/outbrain.py): the ad's, its campaign's and its
advertiser's click rates out of fold, and the display's context joined from events, promoted_content and
documents_categories in DuckDB."""

from __future__ import annotations

from typing import ClassVar

from ..pipeline import Feature

SMOOTHING = 20.0


class ClickRates(Feature):
    """Smoothed click rates of the ad, its campaign and its advertiser; a train row's from the other
    folds only (the folds keep displays whole)."""

    uses_target: ClassVar[bool] = True

    def tables(self):
        return ["promoted_content"]

    def columns(self):
        return ["ad_id"]

    def make_train_test(self, train, test):
        import numpy as np
        import pandas as pd

        ads = self.table("promoted_content", ["ad_id", "campaign_id", "advertiser_id"])
        seen = train[["ad_id", "clicked", "fold"]].merge(ads, how="left")
        wanted = test[["ad_id"]].merge(ads, how="left")
        made_train, made_test = {}, {}
        for level in ("ad_id", "campaign_id", "advertiser_id"):
            name = level.replace("_id", "_rate")
            made_train[name] = np.full(len(seen), np.nan)
            for fold in sorted(seen["fold"].unique()):
                inside = (seen["fold"] == fold).to_numpy()
                made_train[name][inside] = rate(seen[~inside], level, seen.loc[inside, level])
            made_test[name] = rate(seen, level, wanted[level])
        return pd.DataFrame(made_train, index=train.index), pd.DataFrame(made_test, index=test.index)


def rate(seen, level, apply_to):
    """Clicks over views of each value of `level` in `seen`, pulled towards the average by SMOOTHING views."""
    prior = seen["clicked"].mean()
    stats = seen.groupby(level)["clicked"].agg(["sum", "count"])
    smoothed = (stats["sum"] + SMOOTHING * prior) / (stats["count"] + SMOOTHING)
    return apply_to.map(smoothed).astype("float64").fillna(prior).to_numpy()


class DisplayContext(Feature):
    """The display's platform, the ad's advertiser, whether the ad's page shares the display page's
    category, and how many ads the display shows: a join of four tables in DuckDB."""

    def tables(self):
        return ["events", "promoted_content", "documents_categories"]

    def columns(self):
        return []

    def make(self, df):
        made = self.sql("""
            SELECT r._row, e.platform, p.advertiser_id,
                   (dc_page.category_id = dc_ad.category_id)::INT AS same_category,
                   count(*) OVER (PARTITION BY r.display_id) AS ads_shown
            FROM rows r
            LEFT JOIN events e USING (display_id)
            LEFT JOIN promoted_content p USING (ad_id)
            LEFT JOIN documents_categories dc_page ON dc_page.document_id = e.document_id
            LEFT JOIN documents_categories dc_ad ON dc_ad.document_id = p.document_id
        """)
        made["advertiser_id"] = made["advertiser_id"].astype("category")
        return made


FEATURES = [ClickRates, DisplayContext]
'''


# --- the competition ----------------------------------------------------------------------------


def write_competition(raw: Path, displays: int, held_back: float, seed: int) -> pd.DataFrame:
    """Every table of the competition into raw; returns the held-back displays' clicks (display_id,
    ad_id, clicked, and the appeal the click was drawn from), which the competition's test rows lack."""
    rng = np.random.default_rng(seed)
    advertisers, campaigns, ads, categories = 60, 300, 3000, 20
    advertiser_appeal = rng.normal(0, 0.6, advertisers)
    mobile_bias = rng.normal(0, 0.6, advertisers)  # how much better (or worse) it does on platform 2
    campaign_of = rng.integers(0, campaigns, ads)
    advertiser_of_campaign = rng.integers(0, advertisers, campaigns)
    campaign_appeal = rng.normal(0, 0.4, campaigns)
    ad_appeal = rng.normal(0, 0.4, ads)
    advertiser = advertiser_of_campaign[campaign_of]
    documents = 5000
    document_category = rng.integers(0, categories, documents)
    ad_document = rng.integers(0, documents, ads)  # the ad's landing page
    ad_category = document_category[ad_document]

    shown = rng.integers(2, 13, displays)  # ads per display, as Outbrain's 2 to 12
    display = np.repeat(np.arange(1, displays + 1), shown)
    popularity = 1 / np.arange(1, ads + 1) ** 0.9  # Zipf-like: many rare ads
    ad = np.concatenate([rng.choice(ads, n, replace=False, p=popularity / popularity.sum()) for n in shown])
    page = rng.integers(0, documents, displays)
    platform = rng.choice([1, 2, 3], displays, p=[0.45, 0.4, 0.15])
    row_page, row_platform = page[display - 1], platform[display - 1]
    appeal = (
        advertiser_appeal[advertiser[ad]]
        + campaign_appeal[campaign_of[ad]]
        + ad_appeal[ad]
        + mobile_bias[advertiser[ad]] * (row_platform == 2)
        + 0.8 * (document_category[row_page] == ad_category[ad])
    )
    clicks = pd.DataFrame({"display_id": display, "ad_id": ad, "appeal": appeal})
    utility = appeal + rng.gumbel(size=len(ad))  # the click: a multinomial logit of the appeal
    best = pd.Series(utility).groupby(display).transform("max").to_numpy()
    clicks["clicked"] = (utility == best).astype("int64")

    back = rng.random(displays) < held_back
    held = back[clicks["display_id"].to_numpy() - 1]
    raw.mkdir(parents=True, exist_ok=True)
    clicks[~held].drop(columns="appeal").to_csv(raw / "clicks_train.csv", index=False)
    truth = clicks[held].reset_index(drop=True)
    truth[["display_id", "ad_id"]].to_csv(raw / "clicks_test.csv", index=False)
    listed = truth.groupby("display_id")["ad_id"].agg(lambda values: " ".join(map(str, values)))
    listed.reset_index().to_csv(raw / "sample_submission.csv", index=False)
    pd.DataFrame({"display_id": np.arange(1, displays + 1), "document_id": page, "platform": platform}).to_csv(
        raw / "events.csv", index=False
    )
    pd.DataFrame(
        {"ad_id": np.arange(ads), "document_id": ad_document, "campaign_id": campaign_of, "advertiser_id": advertiser}
    ).to_csv(raw / "promoted_content.csv", index=False)
    pd.DataFrame({"document_id": np.arange(documents), "category_id": document_category}).to_csv(
        raw / "documents_categories.csv", index=False
    )
    return truth


def configure(project: Path, folds: int) -> None:
    """The benchmark's features in place of the project's, and its luigi.cfg lines."""
    package = project / "src" / MODULE / "features"
    (package / "outbrain.py").write_text(FEATURES)
    (package / "__init__.py").write_text("from .outbrain import FEATURES\n\n__all__ = ['FEATURES']\n")
    config = project / "luigi.cfg"
    settings = {**CONFIG, "competition": {**CONFIG["competition"], "n_folds": str(folds)}}
    text, section = [], ""
    for line in config.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        key = line.split("=")[0].strip()
        if key in settings.get(section, {}):
            line = f"{key} = {settings[section][key]}"
        text.append(line)
    config.write_text("\n".join(text) + "\n")


# --- scoring --------------------------------------------------------------------------------------


def map_at_k(ranked: dict[int, list[int]], truth: pd.DataFrame) -> float:
    """MAP@K of ranked lists (display -> ads, best first) against each display's clicked ad."""
    clicked = truth[truth["clicked"] == 1].set_index("display_id")["ad_id"]
    scores = []
    for display, ad in clicked.items():
        listed = ranked.get(display, [])[:K]
        scores.append(1 / (listed.index(ad) + 1) if ad in listed else 0.0)
    return float(np.mean(scores))


def by_appeal(rows: pd.DataFrame) -> dict[int, list[int]]:
    """The best anyone can do: each display's ads ranked by the appeal their click was drawn from."""
    ranked = rows.sort_values(["display_id", "appeal"], ascending=[True, False])
    return ranked.groupby("display_id")["ad_id"].agg(list).to_dict()


def by_rate(rows: pd.DataFrame, seen: pd.DataFrame) -> dict[int, list[int]]:
    """The baseline: each display's ads ranked by the ad's smoothed click rate in `seen` (ties: by ad id)."""
    prior = seen["clicked"].mean()
    stats = seen.groupby("ad_id")["clicked"].agg(["sum", "count"])
    rate = (stats["sum"] + SMOOTHING * prior) / (stats["count"] + SMOOTHING)
    scored = rows.assign(rate=rows["ad_id"].map(rate).fillna(prior)).sort_values(
        ["display_id", "rate", "ad_id"], ascending=[True, False, True]
    )
    return scored.groupby("display_id")["ad_id"].agg(list).to_dict()


def read_submission(path: Path) -> dict[int, list[int]]:
    submission = pd.read_csv(path, dtype={"ad_id": str})
    pairs = zip(submission["display_id"], submission["ad_id"], strict=True)
    return {int(display): [int(ad) for ad in ads.split()] for display, ads in pairs}


def measure(work: Path, options: argparse.Namespace) -> dict:
    project = bake(work)
    raw = project / "data" / "raw"
    truth = write_competition(raw, options.displays, options.held_back, options.seed)
    configure(project, options.folds)
    started = time.perf_counter()
    run = subprocess.run(
        ["make", "-C", str(project), "all", f"VENV={sys.prefix}"], capture_output=True, text=True, check=False
    )
    if run.returncode != 0:
        sys.exit(f"make all failed:\n{run.stdout}\n{run.stderr}")
    seconds = time.perf_counter() - started
    [line] = [line for line in run.stdout.splitlines() if line.startswith("Submission: ")]
    submission = project / line.removeprefix("Submission: ")
    [train] = [json.loads(p.read_text()) for p in (project / "data" / "cache" / "Train").glob("*/manifest.json")]
    train_rows = pd.read_csv(raw / "clicks_train.csv")
    [split] = (project / "data" / "cache" / "Split").glob("*/folds.parquet")
    fold = pd.read_parquet(split)["fold"].to_numpy()
    out_of_fold = [  # the baseline on each fold's displays, its click rates from the other folds
        map_at_k(by_rate(train_rows[fold == k], train_rows[fold != k]), train_rows[fold == k])
        for k in sorted(set(fold))
    ]
    return {
        "project": project,
        "seconds": seconds,
        "rows": (len(train_rows), len(truth)),
        "cv": train["facts"]["cv_score"],
        "held_back": map_at_k(read_submission(submission), truth),
        "baseline_cv": float(np.mean(out_of_fold)),
        "baseline_held_back": map_at_k(by_rate(truth, train_rows), truth),
        "oracle_held_back": map_at_k(by_appeal(truth), truth),
        "submission": submission,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--displays", type=int, default=40_000)
    parser.add_argument("--held-back", type=float, default=0.2, help="share of the displays held back as test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5, help="[competition] n_folds")
    parser.add_argument("--work", type=Path, help="keep the baked project here (default: a temporary folder)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-outbrain-") as temporary:
        figures = measure(options.work or Path(temporary), options)
        train_rows, held_rows = figures["rows"]
        print(f"Outbrain-shaped competition: {options.displays:,} displays (seed {options.seed}), {train_rows:,}")
        print(f"train rows, {held_rows:,} held-back rows as test; make all took {figures['seconds']:.0f} s")
        print(f"| MAP@{K} | CV (out of fold) | held-back displays |")
        print("|---|---|---|")
        for name, key in (
            ("pipeline: click rates out of fold + events/promoted_content joins", ""),
            ("baseline: each display's ads by the ad's smoothed click rate", "baseline_"),
        ):
            print(f"| {name} | {figures[key + 'cv']:.5f} | {figures[key + 'held_back']:.5f} |")
        ceiling = "the ceiling: each display's ads by the appeal their click was drawn from"
        print(f"| {ceiling} | | {figures['oracle_held_back']:.5f} |")
        print(f"Submission: {figures['submission']}")


if __name__ == "__main__":
    main()
