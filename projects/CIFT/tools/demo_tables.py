#!/usr/bin/env python
"""Fill the demo tables of README.md and docs/demo.md from the committed demo results.

    python projects/CIFT/tools/demo_tables.py --take logs/demo/comparison.json docs/demo_result.json
    python projects/CIFT/tools/demo_tables.py            # regenerate every table
    python projects/CIFT/tools/demo_tables.py --check    # exit 1 when a table is not its file's

A generated table sits between two comment lines, the first naming the JSON file it comes from
(a `compare_runs.py --json` output, committed under docs/):

    <!-- generated from docs/demo_result.json by projects/CIFT/tools/demo_tables.py -->
    ...
    <!-- end of generated table -->

A marker naming several files (separated by spaces: the same comparison with other seeds)
stands for their margins side by side (cift.comparison.seeds_markdown).

--take copies a demo's comparison into the docs first (`make demo-docs` does it for the
README's). Paths are relative to the repository root.
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "projects" / "CIFT"))  # run from a checkout without install

from cift.arguments import tool_parser  # noqa: E402
from cift.atomic import atomic_write  # noqa: E402
from cift.comparison import comparison_markdown, seeds_markdown  # noqa: E402
from cift.errors import CiftInputError, print_input_error  # noqa: E402

DOCUMENTS = ("README.md", "docs/demo.md")
TOOL = "projects/CIFT/tools/demo_tables.py"
BEGIN = re.compile(r"<!-- generated from (\S+(?: \S+)*) by " + re.escape(TOOL) + r" -->\n")
END = "<!-- end of generated table -->"


def load_result(path: Path) -> dict:
    """A comparison written by compare_runs.py --json; CiftInputError when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CiftInputError(f"{path}: no such demo result (run `make demo` first)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CiftInputError(f"{path}: not a readable JSON file ({err})") from None
    if not isinstance(data, dict) or not {"measured", "runs", "tables"} <= set(data):
        raise CiftInputError(f"{path}: expected a comparison written by compare_runs.py "
                             "--json (keys measured, runs, tables)")
    return data


def filled(text: str, where: str, root: Path = ROOT) -> str:
    """`text` with every generated table regenerated from the file its marker names."""
    out, pos = [], 0
    for begin in BEGIN.finditer(text):
        end = text.find(END, begin.end())
        if end < 0:
            raise CiftInputError(f"{where}: a generated table from {begin.group(1)} has no "
                                 f"closing {END!r}")
        results = [load_result(root / name) for name in begin.group(1).split()]
        table = (comparison_markdown(results[0]) if len(results) == 1
                 else seeds_markdown(results))
        out += [text[pos:begin.end()], table, "\n"]
        pos = end
    return "".join(out) + text[pos:]


def main(argv=None) -> int:
    parser = tool_parser(__doc__)
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 naming each document whose tables differ")
    parser.add_argument("--take", nargs=2, metavar=("COMPARISON", "RESULT"),
                        help="first copy COMPARISON (compare_runs.py --json) to RESULT")
    try:
        args = parser.parse_args(argv)
        if args.take:
            source, target = (Path(p) for p in args.take)
            text = json.dumps(load_result(source), indent=1, ensure_ascii=False) + "\n"
            atomic_write(str(ROOT / target), lambda f: f.write(text.encode()))
        stale = []
        for name in DOCUMENTS:
            path = ROOT / name
            text = path.read_text(encoding="utf-8")
            new = filled(text, name, ROOT)
            if new != text:
                stale.append(name)
                if not args.check:
                    atomic_write(str(path), lambda f, new=new: f.write(new.encode()))
    except CiftInputError as err:
        return print_input_error(err)
    if args.check and stale:
        print(f"demo tables differ from their results in {', '.join(stale)}: run {TOOL}",
              file=sys.stderr)
        return 1
    for name in stale:
        print(f"{name}: demo tables regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
