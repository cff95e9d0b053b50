"""Stage 1, the data: raw files -> validated Parquet (Ingest) -> fold assignment (Split)."""
