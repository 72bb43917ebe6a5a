"""gdrun: a command-line experiment runner for gradient descent, and its Python API.

    import gdrun
    run = gdrun.minimize("x2", lr=0.1, epochs=10)

The API (:mod:`gdrun.api`) loads on first use, so ``import gdrun`` and the command line stay fast.
"""

__version__ = "0.1.0"

_API = ("minimize", "fit", "run", "sweep", "load", "RunResult", "SweepResult", "GdrunWarning")
_ERRORS = ("GdrunError", "InputError", "RunNotFound", "RunError")
__all__ = [*_API, *_ERRORS, "__version__"]


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in _ERRORS:
        from . import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'gdrun' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
