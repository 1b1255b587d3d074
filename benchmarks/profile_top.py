"""Sum py-spy's collapsed stacks (``py-spy record --format raw``) by function: where a profiled server spends its time.

Prints, for the N functions with the most samples, the share of all samples in which the function is on the stack
(inclusive) and the share in which it is the innermost frame (self). Used with ``BENCH_PROFILE`` of
``benchmarks/app_ceiling.sh``::

    python benchmarks/profile_top.py /tmp/houses.raw [N]

With ``py-spy record --gil`` (as app_ceiling.sh runs it) the samples are of the threads holding the GIL, so the
shares are of the time the workers ran Python code.
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Iterable


def parse(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    """The stacks of a raw py-spy file.

    :param lines: lines ``frame;frame;...;frame COUNT``, outermost frame first.
    :returns: (frames outermost first, sample count) per line; blank or malformed lines are skipped.
    """
    stacks = []
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def top(stacks: list[tuple[list[str], int]]) -> tuple[int, dict[str, int], dict[str, int]]:
    """Samples per function, inclusive and self.

    :param stacks: from :func:`parse`.
    :returns: (samples counted, inclusive samples per frame, self samples per frame); a frame counts once per stack
        even when it recurses.
    """
    inclusive: dict[str, int] = collections.Counter()
    own: dict[str, int] = collections.Counter()
    total = 0
    for frames, count in stacks:
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    return total, inclusive, own


def main(argv: list[str]) -> int:
    """Print the top functions of a raw profile; exit status 2 on bad arguments."""
    args = argv
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    limit = int(args[1]) if len(args) > 1 else 40
    with open(args[0], encoding="utf-8") as handle:
        total, inclusive, own = top(parse(handle))
    print(f"{total} samples")
    print(f"{'incl %':>7} {'self %':>7}  function (file:line)")
    for frame, count in sorted(inclusive.items(), key=lambda item: -item[1])[:limit]:
        print(f"{100 * count / max(total, 1):7.1f} {100 * own.get(frame, 0) / max(total, 1):7.1f}  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
