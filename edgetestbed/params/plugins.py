"""Plugins: a strategy that is one class in one file, found by its name or as ``module:Class``.

An exchange policy (:mod:`edgetestbed.policies`), a codec (:mod:`edgetestbed.codecs`) or a
data partition (:mod:`edgetestbed.data.partitions`) is a class that declares its ``name``, a
docstring, its parameters as a pydantic model ``Params`` and what it does, and registers
itself with its kind's :class:`Registry` through the ``@REGISTRY.register`` decorator. A
registry imports every module of its package the first time it is asked for a name, so a
new file in that package is all it takes to add one. Where a kind allows it (policies and
codecs, like applications), a researcher's own class is named ``module:Class`` in the spec and
needs no change to the package.

The spec is assembled from the registries: the names it accepts and suggests, and each
plugin's parameters, checked against its ``Params`` with file, line and field
(:mod:`edgetestbed.spec.appcheck`). Processes parse the same parameters with
:meth:`Registry.parse`, so they accept exactly what ``validate`` accepts.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
import re
from typing import Any, ClassVar, Generic, Mapping, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from edgetestbed.errors import UserError
from edgetestbed.params.fields import did_you_mean, explain, thaw
from edgetestbed.params.units import quote

CLASS_PATTERN = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")   # module.path:ClassName
T = TypeVar("T")


class PluginNotFound(UserError):
    """The module of a ``module:Class`` is not installed here (or misspelt)."""


class PluginParams(BaseModel):
    """Parameters of a plugin as the spec writes them. Like every other part of the spec:
    unknown keys are refused, and so is loose type coercion (``every: '2'``) and an
    infinite or NaN number."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Plugin:
    """What every registered class declares. ``rank`` orders the listings (messages, docs):
    lower first, then by name; a researcher's own plugins keep the default, after the
    built-ins."""

    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = PluginParams
    rank: ClassVar[float] = math.inf


def load_class(target: str, base: type, kind: str, name: str | None = None) -> type:
    """The concrete subclass of ``base`` that ``target`` (``module:Class``) names.

    :class:`UserError` naming the ``kind`` and the ``name`` the spec gave (default:
    ``target``) (:class:`PluginNotFound` if the module itself is not found: perhaps it is
    installed only where the run happens).
    """
    name = target if name is None else name
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:   # a user's module may fail in any way as it is imported
        # Not found is the module itself (or its package) missing, not one it imports.
        missing = isinstance(error, ModuleNotFoundError) and f"{module_name}.".startswith(f"{error.name}.")
        raise (PluginNotFound if missing else UserError)(
            f"{kind} {name!r}: cannot import module {module_name!r} ({error})") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, base)) or inspect.isabstract(cls):
        # The base by the package that exports it: edgetestbed.applications.Application
        public = f"{base.__module__.rpartition('.')[0]}.{base.__name__}"
        raise UserError(f"{kind} {name!r}: {module_name}.{class_name} is not a concrete subclass "
                        f"of {public}")
    return cls


def parse_params(model: type[BaseModel], params: Mapping[str, Any], where: str, noun: str) -> BaseModel:
    """``params`` validated by a plugin's ``model``; :class:`UserError` naming ``where`` and
    the field otherwise, in ``validate``'s words (``noun``: the plugin's kind)."""
    try:
        return model.model_validate(thaw(params))
    except ValidationError as error:
        problems = [f"{'.'.join(map(str, (where, *problem['loc'])))}: {explain(problem, model, noun)}"
                    for problem in error.errors()]
        raise UserError("; ".join(problems)) from None


def values(params: BaseModel) -> dict[str, Any]:
    """A validated model's values as the code uses them: ``push`` in seconds, not ``2s``
    (``model_dump`` would write them back as the spec's text)."""
    return {key: getattr(params, key) for key in type(params).model_fields}


class Registry(Generic[T]):
    """The plugins of one kind (``base``'s subclasses), by name.

    ``kind`` names them in messages ("exchange policy"); ``key`` is the spec's key that
    picks one (``type``); ``package`` is imported module by module on first use;
    ``classes``: whether ``module:Class`` names are accepted too.
    """

    def __init__(self, kind: str, base: type[T], key: str, package: str, *, classes: bool) -> None:
        self.kind, self.base, self.key, self.package, self.classes = kind, base, key, package, classes
        self._plugins: dict[str, type[T]] = {}
        self._discovered = False

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: make ``cls`` known by its ``name``."""
        name = cls.__dict__.get("name")
        if not isinstance(name, str) or not name or ":" in name:
            raise TypeError(f"{cls.__qualname__} declares no name; a {self.kind} needs one, without ':'")
        if name in self._plugins and self._plugins[name] is not cls:
            raise TypeError(f"{self.kind} {name!r} is registered twice: {self._plugins[name].__qualname__} "
                            f"and {cls.__qualname__}")
        if not (isinstance(cls.Params, type) and issubclass(cls.Params, BaseModel)):
            raise TypeError(f"{cls.__qualname__}.Params is not a pydantic model")
        self._plugins[name] = cls
        return cls

    def names(self) -> list[str]:
        """Every registered name, in listing order."""
        self._discover()
        return sorted(self._plugins, key=lambda name: (self._plugins[name].rank, name))

    def plugins(self) -> list[type[T]]:
        """Every registered class, in listing order."""
        return [self._plugins[name] for name in self.names()]

    def accepts(self, name: object) -> bool:
        """Could ``name`` pick a plugin (a registered name, or ``module:Class`` where allowed)?"""
        return isinstance(name, str) and (name in self.names() or self.classes
                                          and CLASS_PATTERN.fullmatch(name) is not None)

    def expected(self) -> str:
        """The names there are, as "expected ..." completes them."""
        names = ", ".join(self.names())
        return f"one of {names}, or module.path:ClassName" if self.classes else f"one of {names}"

    def unknown(self, name: object) -> str:
        """Why ``name`` picks nothing: "'x' is not a known ... (did you mean ...); expected ..."."""
        return (f"{quote(name)} is not a known {self.key}{did_you_mean(name, self.names())}; "
                f"expected {self.expected()}")

    def get(self, name: str) -> type[T]:
        """The class ``name`` picks; :class:`UserError` if none (:class:`PluginNotFound` if
        the module of a ``module:Class`` is not found)."""
        if name in self.names():
            return self._plugins[name]
        if self.classes and CLASS_PATTERN.fullmatch(name):
            return load_class(name, self.base, self.kind)
        raise UserError(f"unknown {self.kind} {name!r}{did_you_mean(name, self.names())}; "
                        f"expected {self.expected()}")

    def _discover(self) -> None:
        """Import every module of the package once: each registers what it defines."""
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self.package}.{module.name}")
