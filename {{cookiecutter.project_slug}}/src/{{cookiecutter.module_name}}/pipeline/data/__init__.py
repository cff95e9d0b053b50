"""Stage 1, the data: raw files -> validated Parquet (Ingest) -> fold assignment (Split); and Feature,
the base class of stage 2's tasks (your features/), which read them."""
