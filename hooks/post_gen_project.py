"""Print the next steps. Deterministic and offline: it changes no file."""

SLUG = {{ cookiecutter.project_slug | tojson }}

print(
    f"""
Created {SLUG}/. Next:

  cd {SLUG}
  make all        # environment, demo data (or yours in data/raw/), features, CV, submission
  make help       # every target
"""
)
