#!/usr/bin/env python3
"""Copies the small files of finished run folders (results.json,
metrics.jsonl, config.json; not the checkpoints) into DEST/<run name>/, so
that the runs behind a results page survive the machine they ran on. Files
are written atomically (copied to a temporary name, then renamed).

    python3 tools/archive_runs.py DEST RUN_DIR...
"""

import os
import shutil
import sys

KEEP = ("results.json", "metrics.jsonl", "config.json")


def archive_run(src, dest):
    """Archives one run folder into dest/<its name>/; False if unfinished."""
    if not os.path.isfile(os.path.join(src, "results.json")):
        return False
    out = os.path.join(dest, os.path.basename(os.path.normpath(src)))
    os.makedirs(out, exist_ok=True)
    for f in KEEP:
        tmp = os.path.join(out, f + ".tmp")
        shutil.copyfile(os.path.join(src, f), tmp)
        os.replace(tmp, os.path.join(out, f))
    return True


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    dest = sys.argv[1]
    for run in sys.argv[2:]:
        print(("archived " if archive_run(run, dest) else "skipped (unfinished) ") + run)


if __name__ == "__main__":
    main()
