"""Export the JSON Schemas (`python -m contracts export`) or check they are current (`check`)."""

import sys

from contracts import schema


def main(argv: list[str] | None = None) -> int:
    """Run the export or the staleness check."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["export"]:
        for path in schema.export():
            print(f"wrote {path}")
        return 0
    if args == ["check"]:
        problems = schema.stale()
        for problem in problems:
            print(f"stale schema: {problem} (run `make schemas`)", file=sys.stderr)
        return 1 if problems else 0
    print("usage: python -m contracts export|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
