"""Plain-text tables and numbers for the terminal."""

from __future__ import annotations


def aligned(rows: list[list[str]], left: int = 3) -> str:
    """Plain-text columns under a rule: the first ``left`` left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    line = lambda r: "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(rows[0]), line(["-" * w for w in widths]), *(line(r) for r in rows[1:])])


def fmt(value, spec: str = ".3f") -> str:
    return "—" if value is None else format(value, spec)
