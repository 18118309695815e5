"""Training and evaluation loops. The package is also callable: `prunepeft.train(...)` is `prunepeft.api.train`."""

from prunepeft.callable_module import make_callable

make_callable(__name__, "train")
