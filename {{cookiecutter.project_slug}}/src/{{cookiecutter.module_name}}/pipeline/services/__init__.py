"""The services outside the project: S3, Kaggle's API and Luigi's central scheduler (luigid)."""
