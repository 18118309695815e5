"""The PrunePEFT search. The package is also callable: `prunepeft.search(...)` is `prunepeft.api.search`."""

from prunepeft.callable_module import make_callable

make_callable(__name__, "search")
