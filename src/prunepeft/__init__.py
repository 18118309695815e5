"""prunepeft: which PEFT modules go into which layers, found by iterative hybrid pruning.

The Python API is imported on first use, so `import prunepeft` stays fast:

    prunepeft.search(data, budget=..., space=...)      -> Result (configuration, metrics)
    prunepeft.train(configuration, data, ...)           -> Result (configuration, metrics, model)
    prunepeft.run(data, ...)                            -> search + train
    prunepeft.evaluate(result_or_model, data)           -> metrics
    prunepeft.load(run_dir)                             -> the trained transformers model
    prunepeft.make_config(budget=..., seed=...)         -> RunConfig
    prunepeft.supernet_for(model, space=, budget=) and prunepeft.PrunePEFTCallback: the search inside
    your own transformers Trainer
"""

__version__ = "0.1.0"

_LAZY = {
    "run": "prunepeft.api", "evaluate": "prunepeft.api",
    "load": "prunepeft.api", "make_config": "prunepeft.api", "Result": "prunepeft.api",
    "RunConfig": "prunepeft.config", "Unit": "prunepeft.space.units", "UserError": "prunepeft.errors",
    "supernet_for": "prunepeft.callback", "PrunePEFTCallback": "prunepeft.callback",
}
__all__ = sorted([*_LAZY, "search", "train"])


_CALLABLE_PACKAGES = ("train", "search")  # subpackages that forward a call to the API function (callable_module.py)


def __getattr__(name: str):
    if name in _CALLABLE_PACKAGES:
        import importlib

        return importlib.import_module(f"prunepeft.{name}")
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'prunepeft' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
