"""Print the next steps. Deterministic and offline: it changes no file."""

SLUG = {{ cookiecutter.project_slug | tojson }}
COMPETITION = {{ cookiecutter.competition | tojson }}

DATA = f"Kaggle's {COMPETITION} files (see README: credentials)" if COMPETITION else "demo data (or yours in data/raw/)"
print(
    f"""
Created {SLUG}/. Next:

  cd {SLUG}
  make all        # environment, {DATA}, features, CV, submission
  make help       # every target
"""
)
