"""Every table of a competition: keys of several columns, test rows given only as the sample's ids,
features that look tables up and aggregate them (pandas and DuckDB), Parquet raw files, and the one
line a missing table or key column gets. Each shape is a tiny competition of its own."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import MANIFEST, MODULE, Competition, Pipeline, describe, tasks_run, tiny_dataset

# Small and quick: two folds, short fits, no permutation importance.
QUICK = {"train": {"model_params": json.dumps({"max_iter": 30}), "importance_repeats": "0"}}


def quick(competition: dict[str, str]) -> dict[str, dict[str, str]]:
    return {**QUICK, "competition": {"n_folds": "2", **competition}}


def with_features(pipeline: Pipeline, source: str) -> None:
    """The pipeline runs the features of `source` (a module that lists them in FEATURES) instead of the project's."""
    path = pipeline.root / "features_under_test.py"
    path.write_text(f"from {MODULE}.pipeline import Feature\n" + source)
    pipeline.features = path


def result(pipeline: Pipeline, task: str, part: str) -> pd.DataFrame:
    [folder] = pipeline.done_folders(task)
    return pd.read_parquet(folder / f"{part}.parquet")


def facts(pipeline: Pipeline, task: str) -> dict:
    [folder] = pipeline.done_folders(task)
    return json.loads((folder / MANIFEST).read_text())["facts"]


def errors(run) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("ERROR")]


# --- AmEx: history rows, labels per customer, test customers only in the sample ----------------

AMEX_FEATURES = '''

class StatementStats(Feature):
    """A many-rows aggregation in DuckDB, its result lined up with the rows by key."""

    def tables(self):
        return ["statements"]

    def columns(self):
        return []

    def make(self, df):
        key = self.keys_sql()
        return self.sql(f"""
            SELECT {key}, count(*) AS statements, avg(balance) AS balance_mean,
                   arg_max(balance, month) AS balance_last
            FROM statements GROUP BY {key}
        """)


class SpendTotals(Feature):
    """The same kind of aggregation handed to the pipeline as a query, written a batch at a time."""

    def tables(self):
        return ["statements"]

    def query(self):
        key = self.keys_sql()
        return f"SELECT {key}, min(spend) AS spend_min, sum(spend) AS spend_sum FROM statements GROUP BY {key}"


FEATURES = [StatementStats, SpendTotals]
'''


@dataclass
class Amex:
    pipeline: Pipeline
    run: object
    labels: pd.DataFrame
    sample: pd.DataFrame
    statements: pd.DataFrame


@pytest.fixture(scope="module")
def amex(tmp_path_factory: pytest.TempPathFactory, competition: Competition) -> Amex:
    """train = train_labels (a Parquet file), test = the sample, 13 statements per customer in a .csv.gz."""
    train, test, sample = tiny_dataset(competition, n_train=160, n_test=40, seed=3)
    key, rng = competition.id_column, np.random.default_rng(3)
    customers = pd.concat([train, test], ignore_index=True)
    statements = customers[[key]].loc[customers.index.repeat(13)].reset_index(drop=True)
    statements["month"] = np.tile(np.arange(1, 14), len(customers))
    size = customers["f_size"].fillna(10.0).to_numpy().repeat(13)
    statements["balance"] = (size + rng.normal(0, 1, len(statements))).round(3)
    statements["spend"] = rng.integers(0, 100, len(statements))
    statements = statements.sample(frac=1.0, random_state=3).reset_index(drop=True)  # in no order

    pipeline = Pipeline(
        tmp_path_factory.mktemp("amex"), **quick({"train": "train_labels", "test": "sample_submission"})
    )
    labels = train[[key, competition.target_column]]
    labels.to_parquet(pipeline.raw / "train_labels.parquet", index=False)
    sample.to_csv(pipeline.raw / "sample_submission.csv", index=False)
    (pipeline.raw / "statements.csv.gz").write_bytes(gzip.compress(statements.to_csv(index=False).encode()))
    with_features(pipeline, AMEX_FEATURES)
    return Amex(pipeline, pipeline.run("Submission"), labels, sample, statements)


def test_test_rows_given_only_in_the_sample_make_a_valid_submission(amex: Amex, competition: Competition):
    """With test = the sample, test's rows are the sample's keys in its order, the sample's
    prediction columns are not features, and the submission has the sample's columns and keys."""
    assert amex.run.returncode == 0, describe(amex.run)
    key = competition.id_column
    ingested = facts(amex.pipeline, "Ingest")
    assert ingested["kinds"] == {} and ingested["rows"] == {"train": len(amex.labels), "test": len(amex.sample)}
    test = result(amex.pipeline, "Ingest", "test")
    assert list(test.columns) == [key] and test[key].tolist() == amex.sample[key].tolist()
    [file] = amex.pipeline.submissions.glob("*.csv")
    submission = pd.read_csv(file)
    assert list(submission.columns) == list(amex.sample.columns)
    assert submission[key].tolist() == amex.sample[key].tolist()
    assert not submission.isna().any().any()


def test_a_many_rows_aggregation_lines_up_with_the_rows_by_key(amex: Amex, competition: Competition):
    """sql()'s GROUP BY result, in no order, reaches each row by its key; so does query()'s, written
    a batch at a time; both equal pandas' groupby."""
    key = competition.id_column
    by_key = amex.statements.sort_values("month").groupby(key)
    expected = pd.DataFrame(
        {
            "statements": by_key.size(),
            "balance_mean": by_key["balance"].mean(),
            "balance_last": by_key["balance"].last(),
            "spend_min": by_key["spend"].min(),
            "spend_sum": by_key["spend"].sum(),
        }
    )
    for part, rows in (("train", amex.labels), ("test", amex.sample)):
        for task in ("StatementStats", "SpendTotals"):
            made = result(amex.pipeline, task, part)
            assert made[key].tolist() == rows[key].tolist(), (task, part)
            want = expected.loc[rows[key], [c for c in made.columns if c != key]].reset_index(drop=True)
            pd.testing.assert_frame_equal(made.drop(columns=key), want, check_dtype=False, check_names=False)
    assert facts(amex.pipeline, "SpendTotals")["columns"] == ["spend_min", "spend_sum"]


def test_a_parquet_raw_file_keeps_its_types(amex: Amex, competition: Competition):
    """train_labels.parquet reaches Ingest without a CSV round trip: the same values and column types;
    the .csv.gz table is typed from its values."""
    stored = result(amex.pipeline, "Ingest", "train")
    pd.testing.assert_frame_equal(stored, amex.labels.reset_index(drop=True), check_dtype=False)
    assert facts(amex.pipeline, "Ingest")["schema"]["train"][competition.id_column] == "int"
    table = facts(amex.pipeline, "Table")
    assert table["rows"] == len(amex.statements)
    assert table["schema"] == {competition.id_column: "int", "month": "int", "balance": "float", "spend": "int"}


# --- Outbrain: rows keyed by two columns, lookup tables ------------------------------------------

OUTBRAIN_FEATURES = f'''
from {MODULE}.features.numeric import NumericColumns


class AdContext(Feature):
    """A lookup join in DuckDB, its result lined up with the rows by _row."""

    def tables(self):
        return ["promoted_content", "events"]

    def columns(self):
        return []

    def make(self, df):
        return self.sql("""
            SELECT r._row, p.campaign_id, e.platform
            FROM rows r LEFT JOIN promoted_content p USING (ad_id) LEFT JOIN events e USING (display_id)
        """)


class Advertiser(Feature):
    """The same kind of lookup in pandas, with self.table()."""

    def tables(self):
        return ["promoted_content"]

    def columns(self):
        return []

    def make(self, df):
        ads = self.table("promoted_content", ["ad_id", "advertiser"])
        found = df[["ad_id"]].merge(ads, on="ad_id", how="left")
        return found[["advertiser"]].astype("category").set_axis(df.index)


FEATURES = [NumericColumns, AdContext, Advertiser]
'''
KEY = ["display_id", "ad_id"]


def outbrain_tables(competition: Competition) -> dict[str, pd.DataFrame]:
    """clicks_train / clicks_test keyed by (display_id, ad_id), four ads per display, and the lookups."""
    train, test, sample = tiny_dataset(competition, n_train=240, n_test=60, seed=4)
    old = competition.id_column

    def keyed(frame: pd.DataFrame, start: int) -> pd.DataFrame:
        i = np.arange(len(frame)) + start
        keys = pd.DataFrame({"display_id": 100 + i // 4, "ad_id": (i * 5) % 12 + 1})
        return pd.concat([keys, frame.drop(columns=old).reset_index(drop=True)], axis=1)

    clicks_test = keyed(test, len(train))
    order = np.random.default_rng(4).permutation(len(clicks_test))
    predictions = sample.drop(columns=old).iloc[: len(clicks_test)].reset_index(drop=True)
    return {
        "clicks_train": keyed(train, 0),
        "clicks_test": clicks_test,
        "sample_submission": pd.concat([clicks_test[KEY].iloc[order].reset_index(drop=True), predictions], axis=1),
        "promoted_content": pd.DataFrame(
            {"ad_id": range(1, 13), "campaign_id": [a // 3 for a in range(1, 13)], "advertiser": list("abcdefabcdef")}
        ),
        "events": pd.DataFrame({"display_id": range(100, 200), "platform": [d % 3 for d in range(100, 200)]}),
    }


def outbrain_pipeline(root: Path, competition: Competition, tables: dict[str, pd.DataFrame]) -> Pipeline:
    pipeline = Pipeline(root, **quick({"train": "clicks_train", "test": "clicks_test", "id_column": " ".join(KEY)}))
    for name, table in tables.items():
        table.to_csv(pipeline.raw / f"{name}.csv", index=False)
    return pipeline


@dataclass
class Outbrain:
    pipeline: Pipeline
    run: object
    tables: dict[str, pd.DataFrame]


@pytest.fixture(scope="module")
def outbrain(tmp_path_factory: pytest.TempPathFactory, competition: Competition) -> Outbrain:
    tables = outbrain_tables(competition)
    pipeline = outbrain_pipeline(tmp_path_factory.mktemp("outbrain"), competition, tables)
    with_features(pipeline, OUTBRAIN_FEATURES)
    return Outbrain(pipeline, pipeline.run("Submission"), tables)


def test_a_key_of_two_columns_runs_from_the_split_to_the_submission(outbrain: Outbrain):
    """Split, features, Train's oof and test predictions and the submission all carry both key
    columns, in the rows' order; the submission follows the sample's order, its predictions found by key."""
    assert outbrain.run.returncode == 0, describe(outbrain.run)
    pipeline, tables = outbrain.pipeline, outbrain.tables
    train_keys, test_keys = (tables[name][KEY].to_numpy().tolist() for name in ("clicks_train", "clicks_test"))
    folds = result(pipeline, "Split", "folds")
    assert list(folds.columns) == [*KEY, "fold"] and folds[KEY].to_numpy().tolist() == train_keys
    for task in ("NumericColumns", "AdContext", "Train"):
        assert result(pipeline, task, "test")[KEY].to_numpy().tolist() == test_keys, task
    assert result(pipeline, "Train", "oof")[KEY].to_numpy().tolist() == train_keys
    [file] = pipeline.submissions.glob("*.csv")
    submission, sample = pd.read_csv(file), tables["sample_submission"]
    assert list(submission.columns) == list(sample.columns)
    assert submission[KEY].to_numpy().tolist() == sample[KEY].to_numpy().tolist()
    predicted = result(pipeline, "Train", "test").set_index(KEY)
    column = [c for c in predicted.columns if c in submission.columns]
    if column:  # a prediction column named as the sample's (binary, regression): the same values by key
        np.testing.assert_allclose(
            submission.set_index(KEY)[column[0]].to_numpy(), predicted.loc[submission.set_index(KEY).index, column[0]]
        )


def test_lookup_joins_in_sql_and_in_pandas_give_each_row_its_values(outbrain: Outbrain):
    """AdContext (DuckDB, lined up by _row) and Advertiser (self.table, a pandas merge) give each row the
    lookup tables' values for its ad and display."""
    tables = outbrain.tables
    for part, name in (("train", "clicks_train"), ("test", "clicks_test")):
        rows = tables[name][KEY]
        expected = rows.merge(tables["promoted_content"], on="ad_id", how="left").merge(
            tables["events"], on="display_id", how="left"
        )
        context = result(outbrain.pipeline, "AdContext", part)
        assert context["campaign_id"].tolist() == expected["campaign_id"].tolist()
        assert context["platform"].tolist() == expected["platform"].tolist()
        advertiser = result(outbrain.pipeline, "Advertiser", part)
        assert advertiser["advertiser"].astype(str).tolist() == expected["advertiser"].tolist()


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (
            lambda t: t["clicks_train"].loc[[0, 1, 2, 2, *range(3, len(t["clicks_train"]))]],
            "clicks_train.csv: key (display_id, ad_id) has repeated values ((100, 11))",
        ),
        (
            lambda t: t["clicks_test"].drop(columns="ad_id"),
            "clicks_test.csv: no column 'ad_id'",
        ),
    ],
    ids=["repeated key", "missing key column"],
)
def test_a_repeated_key_or_a_missing_key_column_is_one_line(
    tmp_path: Path, competition: Competition, spoil, message: str
):
    """A key of two columns that repeats, or a table without one of its columns, stops Ingest with one
    line naming the file and the key."""
    tables = outbrain_tables(competition)
    spoiled = spoil(tables)
    name = (
        "clicks_train"
        if "display_id" in spoiled.columns and len(spoiled) > len(tables["clicks_test"])
        else "clicks_test"
    )
    tables[name] = spoiled
    run = outbrain_pipeline(tmp_path, competition, tables).run("Ingest")
    assert run.returncode != 0
    assert len(errors(run)) == 1 and message in errors(run)[0], describe(run)
    assert "Traceback" not in run.stderr


# --- tables a feature reads: declared, missing, changed -------------------------------------------

READERS = (
    f"from {MODULE}.features.stub import HistoryFeature\nfrom {MODULE}.features.visit_totals import VisitTotals\n"
    + """

class ReadsA(Feature):
    def tables(self):
        return ["table_a"]

    def columns(self):
        return []

    def make(self, df):
        return self.sql(f"SELECT {self.keys_sql()}, sum(x) AS a_sum FROM table_a GROUP BY {self.keys_sql()}")


class ReadsB(Feature):
    def tables(self):
        return ["table_b"]

    def columns(self):
        return []

    def make(self, df):
        b = self.table("table_b")
        return df[self.keys()].merge(b, how="left").drop(columns=self.keys()).set_axis(df.index)


class Stub(HistoryFeature):
    pass  # features/stub.py's HistoryFeature as it comes


FEATURES = [ReadsA, ReadsB, Stub, VisitTotals]
"""
)

BROKEN = """

class ReadsNoSuchTable(Feature):
    def tables(self):
        return ["nosuch"]

    def make(self, df):
        return df[[]]


class JoinsOnAMissingKey(Feature):
    def tables(self):
        return ["table_a"]

    def columns(self):
        return []

    def make(self, df):
        return self.sql(f"SELECT {self.keys_sql()}, count(*) AS n FROM table_a GROUP BY {self.keys_sql()}")


class AsksForAMissingColumn(Feature):
    def tables(self):
        return ["table_b"]

    def make(self, df):
        return self.table("table_b", ["nosuch_column"])


class ReadsAnUndeclaredTable(Feature):
    def columns(self):
        return []

    def make(self, df):
        return self.sql("SELECT * FROM table_b")


FEATURES = [ReadsNoSuchTable, JoinsOnAMissingKey, AsksForAMissingColumn, ReadsAnUndeclaredTable]
"""


def two_tables(pipeline: Pipeline, competition: Competition, key_in_a: bool = True) -> pd.DataFrame:
    """table_a (three rows per row), table_b.parquet (one per row), and the stub's history_table and
    lookup_table (the rows get its lookup_column); returns the history table."""
    train, test, sample = tiny_dataset(competition, n_train=60, n_test=20, seed=5)
    train, test = (t.assign(lookup_column=t["f_count"].fillna(0).astype(int) % 3) for t in (train, test))
    ids = pd.concat([train, test])[competition.id_column].to_numpy()
    a = pd.DataFrame({competition.id_column: np.repeat(ids, 3), "x": np.arange(3 * len(ids))})
    b = pd.DataFrame({competition.id_column: ids, "y": np.arange(len(ids)) * 2.0})
    history = pd.DataFrame({competition.id_column: np.repeat(ids[::2], 2), "amount": np.arange(len(ids[::2]) * 2.0)})
    lookup = pd.DataFrame({"lookup_column": [0, 1, 2], "lookup_value": [0.5, 1.5, 2.5]})
    a = a if key_in_a else a.rename(columns={competition.id_column: "k"})
    pipeline.write_raw(train, test, sample, table_a=a, history_table=history, lookup_table=lookup)
    b.to_parquet(pipeline.raw / "table_b.parquet", index=False)
    return history


def test_a_changed_table_reruns_only_the_features_that_declared_it(tmp_path: Path, competition: Competition):
    """Features are built from the tables they declare; changing one table re-runs its Table and the
    feature that reads it, nothing else. The stub's HistoryFeature runs as it comes; the demo's
    VisitTotals (skip_missing_tables) makes no columns, with a warning, as data/raw has no `visits`."""
    pipeline = Pipeline(tmp_path, **quick({}))
    history = two_tables(pipeline, competition)
    with_features(pipeline, READERS)
    first = pipeline.run("Features")
    assert first.returncode == 0, describe(first)
    made = ["ReadsA", "ReadsB", "Stub", "VisitTotals"]
    assert sorted(tasks_run(first)) == sorted(["Ingest", "Split", *["Table"] * 5, *made])
    assert "WARNING: VisitTotals: data/raw has no table 'visits', so the feature makes no columns" in first.stderr
    assert list(result(pipeline, "VisitTotals", "train").columns) == [competition.id_column]
    stub = result(pipeline, "Stub", "train")  # the stub's HistoryFeature, as it comes
    counts = history.groupby(competition.id_column).size().reindex(stub[competition.id_column])
    np.testing.assert_array_equal(stub["history_rows"].to_numpy(dtype=float), counts.to_numpy(dtype=float))
    assert stub["lookup_value"].notna().all()
    table = pd.read_csv(pipeline.raw / "table_a.csv")
    table.assign(x=table["x"] + 1).to_csv(pipeline.raw / "table_a.csv", index=False)
    second = pipeline.run("Features")
    assert second.returncode == 0, describe(second)
    assert tasks_run(second) == ["Table", "ReadsA"]
    assert [line.split()[2] for line in second.stdout.splitlines() if line.startswith("run   Table")] == [
        "name=table_a"
    ]


def test_a_missing_table_or_key_column_is_one_line_each(tmp_path: Path, competition: Competition):
    """A feature naming a table data/raw does not have, SQL joining on a key column its table lacks,
    a column a table does not have, and SQL reading a table the feature did not list: one ERROR line
    each, naming the feature (and the tables there are, where a table is missing), no traceback."""
    pipeline = Pipeline(tmp_path, **quick({}))
    two_tables(pipeline, competition, key_in_a=False)
    with_features(pipeline, BROKEN)
    run = pipeline.run("Features")
    assert run.returncode != 0
    lines = errors(run)
    expected = {
        "ReadsNoSuchTable": "ERROR: ReadsNoSuchTable: data/raw has no table 'nosuch' (a .csv, .csv.gz or .parquet "
        "file; tables there: history_table, lookup_table, sample_submission, table_a, table_b, test, train)",
        "JoinsOnAMissingKey": "ERROR: JoinsOnAMissingKey: its SQL failed: Binder Error: Referenced column "
        f'"{competition.id_column}"',
        "AsksForAMissingColumn": "ERROR: AsksForAMissingColumn: table 'table_b' has no column 'nosuch_column'",
        "ReadsAnUndeclaredTable": "ERROR: ReadsAnUndeclaredTable: its SQL failed: Catalog Error: Table with name "
        "table_b",
    }
    [undeclared] = [line for line in lines if line.startswith("ERROR: ReadsAnUndeclaredTable")]
    assert "(its views: rows; tables there to list in tables(): history_table, lookup_table," in undeclared
    for feature, start in expected.items():
        mine = [line for line in lines if line.startswith(f"ERROR: {feature}")]
        assert len(mine) == 1 and mine[0].startswith(start), describe(run)
    assert len(lines) == len(expected) and "Traceback" not in run.stderr, describe(run)


def test_a_rows_table_data_raw_lacks_is_one_line(tmp_path: Path, competition: Competition):
    """[competition] train naming a table data/raw does not have: one line naming it, listing the
    tables there and the keys to set."""
    pipeline = Pipeline(tmp_path, **quick({"train": "train_labels"}))
    pipeline.write_raw(*tiny_dataset(competition, n_train=60, n_test=20))
    run = pipeline.run("Ingest")
    assert run.returncode != 0
    [line] = errors(run)
    assert "no table train_labels" in line and "tables there: sample_submission, test, train" in line, line
    assert "[competition] train, test and sample_submission" in line and "Traceback" not in run.stderr
