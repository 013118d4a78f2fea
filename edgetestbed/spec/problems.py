"""Problems found in a spec document, each placed at a line, all raised at once."""

from __future__ import annotations

from edgetestbed.errors import SpecError


DocPath = tuple  # a place in the document: keys and list indices, e.g. ("nodes", 2, "link", "bw")


class Problems:
    """Problems found so far, each placed at a line of the document."""

    def __init__(self, source: str, lines: dict[DocPath, int]) -> None:
        self.source, self.lines, self.found = source, lines, []

    def line(self, path: DocPath) -> int:
        """The line of ``path``, or of its nearest ancestor that the document has."""
        for length in range(len(path), -1, -1):
            if path[:length] in self.lines:
                return self.lines[path[:length]]
        return 1

    def add(self, path: DocPath, message: str, line: int | None = None, source: str | None = None) -> None:
        """A problem at ``path`` (its line unless given); in another file than the spec's (a churn
        trace) if ``source`` names one: then ``path`` is the column, ``line`` the file's."""
        self.found.append((source or "", line or self.line(path), _path_text(path), message))

    def raise_if_any(self) -> None:
        if self.found:   # the spec's own first, then each other file's
            lines = [f"{source or self.source}:{line}: {path + ': ' if path else ''}{message}"
                     for source, line, path, message in sorted(set(self.found))]
            raise SpecError("\n".join(lines))


def _path_text(path: DocPath) -> str:
    text = "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path)
    return text.lstrip(".")
