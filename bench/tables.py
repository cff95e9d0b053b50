"""Benchmark: features over a competition's other tables, through the generated pipeline (DuckDB),
against the pandas way on the same ingested Parquet, in one run.

Two competitions of its own making, deterministic from --seed, each in a baked project:

- AmEx-shaped: `statements.csv`, 13 monthly rows per customer (its id an integer, or with --ids hex
  64 hexadecimal characters as in AmEx's data) with 30 numeric columns (--customers
  1,550,000 gives 20 million rows, about 5 GB of CSV); `train_labels.csv` (80% of the customers,
  a target each) is train, and `sample_submission.csv` (the other 20%) is test. A feature of 121
  columns per customer (the count, and the mean, min, max and last of every column) runs as
  `query()`, its result written to the feature's Parquet a batch at a time; the same feature as
  `make()` returning `self.sql(...)` (the result in pandas) is measured too. The pandas way reads
  the ingested statements (Table's table.parquet, the needed columns), sorts them by customer and
  month and aggregates with groupby; polars (lazy scan, group_by, streaming) runs when installed.
- Outbrain-shaped: `clicks_train.csv` / `clicks_test.csv` (--clicks rows in all, keyed by
  display_id and ad_id, about 4.5 ads per display) and two lookups, `events.csv` (a row per
  display) and `promoted_content.csv` (a row per ad); a feature joins each click to both.

Each figure is the wall time and peak memory of the run's process tree (bench/large.py's
sampler); the upstream tasks (Table, Ingest, Split) run first and are reported on their own.
DuckDB runs with `[duckdb] memory_limit` --memory-limit and the task's share of the cores.

Usage: python bench/tables.py [--customers N] [--clicks N] [--memory-limit 1GB] [--work DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
from large import bake, row, wall_and_peak

MODULE = "kaggle_competition"
COLUMNS = 30  # numeric columns of the statements
MONTHS = 13  # statements per customer
BLOCK_CUSTOMERS = 50_000
BLOCK_CLICKS = 1_000_000
ADS_PER_DISPLAY = 4.5
GOAL_PEAK_MB = 1536  # 1.5 GB
GOAL_RATIO = 0.4

# --- the AmEx-shaped competition ---------------------------------------------------------------


def customer_ids(first: int, count: int, form: str) -> np.ndarray:
    """Customer ids first.. as AmEx writes them (64 hexadecimal characters) or as integers."""
    if form == "int":
        return np.arange(first, first + count)
    return np.array([f"{i:064x}" for i in range(first, first + count)], dtype=object)


def write_amex(raw: Path, customers: int, seed: int, ids_form: str = "int") -> int:
    """statements.csv (customers x 13 rows), train_labels.csv and sample_submission.csv; the
    statement rows, written block by block."""
    raw.mkdir(parents=True, exist_ok=True)
    rows = 0
    with open(raw / "statements.csv", "wb") as out:
        for number, first in enumerate(range(0, customers, BLOCK_CUSTOMERS)):
            rng = np.random.default_rng([seed, number])
            count = min(BLOCK_CUSTOMERS, customers - first)
            ids = np.repeat(customer_ids(first, count, ids_form), MONTHS)
            columns = {"customer_ID": ids, "month": np.tile(np.arange(1, MONTHS + 1), count)}
            level = rng.normal(0, 1, (count, COLUMNS)).repeat(MONTHS, axis=0)
            values = (level + rng.normal(0, 0.5, (len(ids), COLUMNS))).round(4)
            columns.update({f"c{i}": values[:, i] for i in range(COLUMNS)})
            table = pa.table(columns)
            pv.write_csv(table, out, pv.WriteOptions(include_header=number == 0))
            rows += len(ids)
    rng = np.random.default_rng([seed, 1 << 30])
    test = rng.random(customers) < 0.2
    ids = customer_ids(0, customers, ids_form)
    target = (rng.random(customers) < 0.25).astype("int64")
    pv.write_csv(pa.table({"customer_ID": ids[~test], "target": target[~test]}), raw / "train_labels.csv")
    pv.write_csv(
        pa.table({"customer_ID": ids[test], "prediction": np.full(test.sum(), 0.5)}), raw / "sample_submission.csv"
    )
    return rows


def aggregates(columns: int = COLUMNS) -> str:
    """The 121 columns per customer: the count, and the mean, min, max and last (by month) of each column."""
    parts = ["count(*) AS statements"]
    for i in range(columns):
        parts += [f"avg(c{i}) AS c{i}_mean", f"min(c{i}) AS c{i}_min", f"max(c{i}) AS c{i}_max"]
        parts.append(f"arg_max(c{i}, month) AS c{i}_last")
    return ",\n               ".join(parts)


AMEX_FEATURES = '''"""The benchmark's features: per-customer aggregates of the statements (bench/tables.py)."""

from ..pipeline import Feature

AGGREGATES = """{aggregates}"""


class StatementAggregates(Feature):
    """121 columns per customer, written a batch at a time (query())."""

    def tables(self):
        return ["statements"]

    def query(self):
        return f"SELECT customer_ID, {{AGGREGATES}} FROM statements GROUP BY customer_ID"


class StatementAggregatesInPandas(Feature):
    """The same, the result materialised in pandas (make() returning self.sql())."""

    def tables(self):
        return ["statements"]

    def columns(self):
        return []

    def make(self, df):
        return self.sql(f"SELECT customer_ID, {{AGGREGATES}} FROM statements GROUP BY customer_ID")


FEATURES = [StatementAggregates, StatementAggregatesInPandas]
'''

PANDAS_WAY = """
import sys
import pandas as pd

columns = ["customer_ID", "month", *[f"c{i}" for i in range(int(sys.argv[2]))]]
statements = pd.read_parquet(sys.argv[1], columns=columns)
statements = statements.sort_values(["customer_ID", "month"], kind="stable")
values = [c for c in columns if c.startswith("c") and c != "customer_ID"]
grouped = statements.groupby("customer_ID", sort=True)
made = grouped[values].agg(["mean", "min", "max", "last"])
made.columns = [f"{column}_{statistic}" for column, statistic in made.columns]
made.insert(0, "statements", grouped.size())
print(made.shape)
"""

POLARS_WAY = """
import sys
import polars as pl

values = [f"c{i}" for i in range(int(sys.argv[2]))]
statistics = [pl.len().alias("statements")]
for c in values:
    statistics += [pl.col(c).mean().alias(f"{c}_mean"), pl.col(c).min().alias(f"{c}_min"),
                   pl.col(c).max().alias(f"{c}_max"), pl.col(c).sort_by("month").last().alias(f"{c}_last")]
made = pl.scan_parquet(sys.argv[1]).group_by("customer_ID").agg(statistics).collect(engine="streaming")
print(made.shape)
"""

DUCKDB_ALONE = """
import sys
import duckdb

database = duckdb.connect(config={"threads": 2, "memory_limit": sys.argv[3], "preserve_insertion_order": False})
query = f"SELECT customer_ID, {sys.argv[2]} FROM read_parquet('{sys.argv[1]}') GROUP BY customer_ID"
print(sum(batch.num_rows for batch in database.sql(query).to_arrow_reader(1 << 16)))
"""

# --- the Outbrain-shaped competition -----------------------------------------------------------


def write_outbrain(raw: Path, clicks: int, seed: int) -> None:
    """clicks_train.csv (80% of the displays) and clicks_test.csv keyed by (display_id, ad_id),
    the sample submission (test's keys), events.csv (a row per display) and promoted_content.csv."""
    raw.mkdir(parents=True, exist_ok=True)
    displays = max(10, int(clicks / ADS_PER_DISPLAY))
    ads = max(100, displays // 20)
    ads += ads % 7919 == 0
    names = ("clicks_train", "clicks_test", "sample_submission")
    with contextlib.ExitStack() as stack:
        files = {name: stack.enter_context(open(raw / f"{name}.csv", "wb")) for name in names}
        written, number = 0, 0
        while written < clicks:
            rng = np.random.default_rng([seed, number])
            count = min(BLOCK_CLICKS, clicks - written)
            click = np.arange(written, written + count)
            display = (click / ADS_PER_DISPLAY).astype("int64")
            ad = (click * 7919) % ads  # distinct within a display (7919 is prime, ads not a multiple of it)
            test = (display % 5) == 0
            clicked = (rng.random(count) < 0.19).astype("int64")
            for name, chosen, table in (
                ("clicks_train", ~test, {"clicked": clicked[~test]}),
                ("clicks_test", test, {}),
                ("sample_submission", test, {"clicked": np.full(test.sum(), 0.19)}),
            ):
                keys = {"display_id": display[chosen], "ad_id": ad[chosen]}
                pv.write_csv(pa.table({**keys, **table}), files[name], pv.WriteOptions(include_header=number == 0))
            written, number = written + count, number + 1
    rng = np.random.default_rng([seed, 1 << 31])
    events = {"display_id": np.arange(displays + 1), "platform": rng.integers(1, 4, displays + 1)}
    events["day"] = rng.integers(0, 15, displays + 1)
    pv.write_csv(pa.table(events), raw / "events.csv")
    promoted = {"ad_id": np.arange(ads), "campaign_id": rng.integers(0, ads // 5 + 1, ads)}
    promoted["advertiser_id"] = rng.integers(0, ads // 50 + 1, ads)
    pv.write_csv(pa.table(promoted), raw / "promoted_content.csv")


OUTBRAIN_FEATURES = '''"""The benchmark's feature: each click's display and ad looked up (bench/tables.py)."""

from ..pipeline import Feature


class ClickContext(Feature):
    """The display's platform and day, the ad's campaign and advertiser: two lookups joined in DuckDB."""

    def tables(self):
        return ["events", "promoted_content"]

    def query(self):
        return """
            SELECT r._row, e.platform, e.day, p.campaign_id, p.advertiser_id
            FROM rows r LEFT JOIN events e USING (display_id) LEFT JOIN promoted_content p USING (ad_id)
        """


FEATURES = [ClickContext]
'''

# --- running ------------------------------------------------------------------------------------


def configure(project: Path, features: str, competition: dict[str, str], memory_limit: str) -> None:
    """The benchmark's features in place of the project's, and its [competition] and [duckdb] lines."""
    package = project / "src" / MODULE / "features"
    (package / "bench_features.py").write_text(features)
    (package / "__init__.py").write_text("from .bench_features import FEATURES\n\n__all__ = ['FEATURES']\n")
    config = project / "luigi.cfg"
    text = config.read_text()
    for key, value in competition.items():
        text = "\n".join(f"{key} = {value}" if line.startswith(f"{key} = ") else line for line in text.splitlines())
    text = text.replace("memory_limit =", f"memory_limit = {memory_limit}", 1)
    config.write_text(text + "\n")


def task(project: Path, *args: str) -> tuple[float, float]:
    """Wall seconds and peak MB of one pipeline task's run, as the Makefile runs it (WORKERS=1): the
    task and whatever of its upstream is not built yet."""
    settings = [f"LUIGI_CONFIG_PATH={project / 'luigi.cfg'}", f"PYTHONPATH={project / 'src'}"]
    command = [sys.executable, "-m", MODULE, *args, "--local-scheduler", "--workers", "1"]
    return wall_and_peak(["env", *settings, *command], project)


def script(code: str, *args: str, cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak MB of a Python script, with this process's PYTHONPATH (polars may be there)."""
    path = f"PYTHONPATH={os.environ.get('PYTHONPATH', '')}"
    return wall_and_peak(["env", path, sys.executable, "-c", code, *args], cwd)


def has_polars() -> bool:
    try:
        import polars  # noqa: F401
    except ImportError:
        return False
    return True


def amex(work: Path, options: argparse.Namespace) -> dict:
    project = bake(work / "amex")
    started = time.perf_counter()
    rows = write_amex(project / "data" / "raw", options.customers, options.seed, options.ids)
    figures = {"statements": rows, "write": time.perf_counter() - started}
    figures["csv_mb"] = (project / "data" / "raw" / "statements.csv").stat().st_size / 2**20
    competition = {"id_column": "customer_ID", "train": "train_labels", "test": "sample_submission"}
    configure(project, AMEX_FEATURES.format(aggregates=aggregates()), competition, options.memory_limit)
    figures["table"] = task(project, "Table", "--name", "statements")
    figures["split"] = task(project, "Split")
    figures["query"] = task(project, "StatementAggregates")
    figures["sql"] = task(project, "StatementAggregatesInPandas")
    [parquet] = (project / "data" / "cache" / "Table").glob("*/table.parquet")
    figures["pandas"] = script(PANDAS_WAY, str(parquet), str(COLUMNS), cwd=work)
    figures["duckdb"] = script(DUCKDB_ALONE, str(parquet), aggregates(), options.memory_limit, cwd=work)
    figures["polars"] = script(POLARS_WAY, str(parquet), str(COLUMNS), cwd=work) if has_polars() else None
    [made] = (project / "data" / "cache" / "StatementAggregates").glob("*/train.parquet")
    figures["columns"] = len(pq.read_schema(made).names) - 1
    return figures


def outbrain(work: Path, options: argparse.Namespace) -> dict:
    project = bake(work / "outbrain")
    write_outbrain(project / "data" / "raw", options.clicks, options.seed)
    competition = {"id_column": "display_id ad_id", "target_column": "clicked", "train": "clicks_train"}
    competition["test"] = "clicks_test"
    configure(project, OUTBRAIN_FEATURES, competition, options.memory_limit)
    figures = {"split": task(project, "Split")}
    figures["tables"] = [task(project, "Table", "--name", name) for name in ("events", "promoted_content")]
    figures["join"] = task(project, "ClickContext")
    return figures


def print_table(amex_figures: dict, outbrain_figures: dict, options: argparse.Namespace) -> None:
    a, o = amex_figures, outbrain_figures
    (query_s, query_mb), (sql_s, sql_mb), (pandas_s, pandas_mb) = a["query"], a["sql"], a["pandas"]
    print(
        f"AmEx-shaped: {a['statements']:,} statement rows x {COLUMNS} columns ({a['csv_mb']:.0f} MB CSV), "
        f"{options.customers:,} customers ({options.ids} ids), a feature of {a['columns']} columns; "
        f"Outbrain-shaped: {options.clicks:,} clicks; [duckdb] memory_limit {options.memory_limit}; "
        f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}"
    )
    print()
    print("| figure | measured | baseline | ratio | goal | met |")
    print("|---|---|---|---|---|---|")
    print(row(
        "aggregation feature (query(), written in batches), wall time", f"{query_s:.1f} s",
        f"pandas way {pandas_s:.1f} s", query_s / pandas_s, f"at most {GOAL_RATIO}x", query_s <= GOAL_RATIO * pandas_s,
    ))  # fmt: skip
    print(row(
        "aggregation feature (query()), peak tree RSS", f"{query_mb:.0f} MB", f"pandas way {pandas_mb:.0f} MB",
        query_mb / pandas_mb, f"at most {GOAL_PEAK_MB} MB", query_mb <= GOAL_PEAK_MB,
    ))  # fmt: skip
    print(row(
        "aggregation feature (self.sql() into pandas), wall time", f"{sql_s:.1f} s", f"pandas way {pandas_s:.1f} s",
        sql_s / pandas_s, "faster", sql_s < pandas_s,
    ))  # fmt: skip
    print(row(
        "aggregation feature (self.sql() into pandas), peak tree RSS", f"{sql_mb:.0f} MB",
        f"pandas way {pandas_mb:.0f} MB", sql_mb / pandas_mb, "smaller", sql_mb < pandas_mb,
    ))  # fmt: skip
    others = [("DuckDB's aggregation alone (no alignment, no cache)", a["duckdb"], "(the floor of query())")]
    if a["polars"] is not None:
        others.append(("polars way (scan_parquet, group_by, streaming)", a["polars"], "(for the record)"))
    for name, (seconds, mb), goal in others:
        print(row(
            f"{name}, wall time", f"{seconds:.1f} s", f"pandas way {pandas_s:.1f} s", seconds / pandas_s, goal, True
        ))  # fmt: skip
        print(row(
            f"{name}, peak tree RSS", f"{mb:.0f} MB", f"pandas way {pandas_mb:.0f} MB", mb / pandas_mb,
            "(for the record)", True,
        ))  # fmt: skip
    join_s, join_mb = o["join"]
    print(row(
        "join feature (clicks x events x promoted_content), peak tree RSS", f"{join_mb:.0f} MB ({join_s:.1f} s)",
        "-", join_mb / GOAL_PEAK_MB, f"at most {GOAL_PEAK_MB} MB", join_mb <= GOAL_PEAK_MB,
    ))  # fmt: skip
    print()
    polars = "" if a["polars"] is not None else " polars: not installed (pip install polars to compare it)."
    print(
        f"Upstream, for the record: statements written in {a['write']:.0f} s; Table (CSV -> Parquet) "
        f"{a['table'][0]:.1f} s, {a['table'][1]:.0f} MB; AmEx Ingest + Split {a['split'][0]:.1f} s, "
        f"{a['split'][1]:.0f} MB; clicks Ingest + Split {o['split'][0]:.1f} s, {o['split'][1]:.0f} MB; lookup "
        f"Tables {sum(t[0] for t in o['tables']):.1f} s.{polars}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_550_000, help="AmEx customers (13 statements each)")
    parser.add_argument("--clicks", type=int, default=50_000_000, help="Outbrain clicks, train and test")
    parser.add_argument("--memory-limit", default="1GB", help="[duckdb] memory_limit of both projects")
    parser.add_argument("--ids", choices=("int", "hex"), default="int", help="integers, or AmEx's 64 hex characters")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="folder for the projects (default: a temporary one)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tables-", dir=options.work) as work:
        print_table(amex(Path(work), options), outbrain(Path(work), options), options)


if __name__ == "__main__":
    main()
