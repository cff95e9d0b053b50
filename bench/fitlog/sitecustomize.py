"""Fit and predict timings of any process that imports scikit-learn's HistGradientBoostingClassifier:
ours, the peer kit's peers, a notebook. Put this folder on PYTHONPATH (Python imports sitecustomize
at start) and set T0 to the start time; each fit and predict_proba then writes one line to stderr:

    FITLOG <seconds since T0 at its end> [pid] fit|predict <seconds it took> start <seconds since T0>

    export PYTHONPATH=bench/fitlog T0=$(date +%s.%N)
    python ../shared/bench-peers/plain_pandas.py --data $PEERS_DATA/n200k --work /tmp/plain 2>&1 | grep FITLOG

Timing only: the classes behave as before (the wrapped methods return what they returned).
"""

import os
import sys
import time

T0 = float(os.environ.get("T0") or time.time())
MODULE = "sklearn.ensemble._hist_gradient_boosting.gradient_boosting"


def _line(text: str) -> None:
    os.write(2, f"FITLOG {time.time() - T0:7.3f} [{os.getpid()}] {text}\n".encode())


def _timed(method, name: str):
    def timed(self, *args, **kwargs):
        started = time.time()
        result = method(self, *args, **kwargs)
        _line(f"{name} {time.time() - started:.3f} start {started - T0:.3f}")
        return result

    return timed


class _WrapOnImport:
    """Wraps the class's methods once its module has run (the wrap costs nothing until then)."""

    def find_spec(self, name, path=None, target=None):
        if name != MODULE:
            return None
        import importlib.util

        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            cls = module.HistGradientBoostingClassifier
            cls.fit, cls.predict_proba = _timed(cls.fit, "fit"), _timed(cls.predict_proba, "predict")

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _WrapOnImport())
