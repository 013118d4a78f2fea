"""Loading: a spec file or text in, a :class:`~edgetestbed.spec.model.Spec` out, or one
:class:`~edgetestbed.errors.SpecError` with every problem found."""

from __future__ import annotations

from pathlib import Path

from edgetestbed.errors import SpecError
from edgetestbed.spec.appcheck import check_plugins
from edgetestbed.spec.explain import validate_input
from edgetestbed.spec.model import Spec
from edgetestbed.spec.problems import Problems
from edgetestbed.spec.resolve import resolve
from edgetestbed.spec.tree import check_tree
from edgetestbed.spec.yamldoc import read_yaml

__all__ = ["load_spec", "load_spec_text"]


def load_spec(path: str | Path) -> Spec:
    """Read, validate and resolve the spec in ``path``; SpecError names file, line and field."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise SpecError(f"{source}: cannot read the spec: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise SpecError(f"{source}:{line}: the file is not UTF-8 text; "
                        "expected a YAML text file") from None
    return load_spec_text(text, source, Path(path).parent)


def load_spec_text(text: str, source: str = "<string>", base: str | Path = ".") -> Spec:
    """Validate and resolve spec ``text``; ``source`` names it in messages and in ``Spec.source``.
    ``base`` is the directory a ``churn: {trace: ...}`` path is relative to: the current
    directory unless given (``load_spec`` gives the spec file's)."""
    document = read_yaml(text, source)
    problems = Problems(source, document.lines)
    for path, message, line in document.duplicates:
        problems.add(path, message, line)
    model = validate_input(document.data, problems)
    check_tree(document.data, problems)
    check_plugins(document.data, problems.add)
    problems.raise_if_any()
    spec = resolve(model, source, problems, Path(base))
    problems.raise_if_any()
    return spec
