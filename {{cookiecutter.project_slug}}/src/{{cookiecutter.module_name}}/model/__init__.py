"""Stage 3, the model: cross-validated training (Train) and the submission file (Submission)."""
