"""Kept for imports inside the attack package; the functions live in the torch-free ``engine.eps``."""

from engine.eps import format_eps, parse_eps

__all__ = ["format_eps", "parse_eps"]
