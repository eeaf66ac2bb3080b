"""Syntax: grammar loading, the tree, parsing and the canonical printer."""

from .nodes import Program
from .parser import grammar_text, parse
from .printer import format_program, format_source

__all__ = ["Program", "parse", "grammar_text", "format_program", "format_source"]
