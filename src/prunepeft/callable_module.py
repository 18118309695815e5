"""`prunepeft.train(...)` and `prunepeft.search(...)` are API functions, while `prunepeft.train` and
`prunepeft.search` are also subpackages: Python's import system sets the package attribute to the
subpackage whenever one of its modules is imported, so a plain function there would be replaced.
The two subpackages are therefore callable modules that forward a call to the API function."""

from __future__ import annotations

import importlib
import sys
import types


class CallableModule(types.ModuleType):
    _api_function: str

    def _target(self):
        return getattr(importlib.import_module("prunepeft.api"), self._api_function)

    def __call__(self, *args, **kwargs):
        return self._target()(*args, **kwargs)

    @property
    def __signature__(self):  # inspect.signature / IDEs show the API function's parameters
        import inspect

        return inspect.signature(self._target())


def make_callable(module_name: str, api_function: str) -> None:
    module = sys.modules[module_name]
    module.__class__ = CallableModule
    module._api_function = api_function
