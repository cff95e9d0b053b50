"""`python -m {{ cookiecutter.module_name }} <Task> [luigi options]`, as the Makefile runs every task:
the pipeline's command line, in pipeline/main.py."""

from .pipeline.main import main

if __name__ == "__main__":
    main()
