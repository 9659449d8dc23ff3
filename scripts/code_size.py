#!/usr/bin/env python
"""List modules over ~400 lines and functions over ~60 lines in hubseg/, server/ and scripts/ (the size rule of
docs/architecture.md). A function may be longer when its docstring says why: a line starting with ``Long:``.

    python scripts/code_size.py [--max-module 400] [--max-function 60] [--strict]

Prints one offender per line, longest first; ``--strict`` exits 1 when there is any (for CI once clean).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("hubseg", "server", "scripts")


def offenders(max_module: int, max_function: int) -> list[tuple[int, str]]:
    """``(lines, description)`` of every module and function over its limit."""
    found = []
    for folder in FOLDERS:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            name = path.relative_to(REPO_ROOT)
            lines = text.count("\n") + 1
            if lines > max_module:
                found.append((lines, f"module   {name}: {lines} lines"))
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    docstring = ast.get_docstring(node) or ""
                    excused = any(line.strip().startswith("Long:") for line in docstring.splitlines())
                    if length > max_function and not excused:
                        found.append((length, f"function {name}:{node.lineno} {node.name}: {length} lines"))
    return sorted(found, reverse=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-module", type=int, default=400)
    parser.add_argument("--max-function", type=int, default=60)
    parser.add_argument("--strict", action="store_true", help="exit 1 when there is any offender")
    args = parser.parse_args(argv)
    found = offenders(args.max_module, args.max_function)
    for _, text in found:
        print(text)
    print(f"{len(found)} offender(s) (modules > {args.max_module} lines, functions > {args.max_function} lines)")
    return 1 if (args.strict and found) else 0


if __name__ == "__main__":
    sys.exit(main())
