"""Stage 3, the training: cross-validated models (Train), blends, tuning and the submission file."""
