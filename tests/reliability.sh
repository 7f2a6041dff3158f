#!/bin/sh
# The fault suite at full size, in one command: the crash loop with at least 50 SIGKILLs, PostgreSQL stopped
# and restarted mid-cycle, every other test marked `faults`, and the SQLite many-writers tests in
# test_faults.py (run by file too, in case they are not marked). Plain `pytest` (CI) runs the quick version.
# Extra arguments go to pytest; CRASH_SEED and CRASH_KILLS override the crash loop's seed and kill count.
set -eu
cd "$(dirname "$0")/.."
export RELIABILITY=full
python -m pytest -m faults -p no:cacheprovider -s -q "$@"
python -m pytest tests/test_faults.py -m "not faults" -p no:cacheprovider -q "$@" || [ $? -eq 5 ]  # 5: all marked
