#!/usr/bin/env python
"""Returns after 0..k inner steps on held-out tasks: a thin wrapper over `meta-rl evaluate` (same arguments).

    python scripts/evaluate.py runs/nav-maml --tasks 40 --grad-steps 3 --json results/nav-maml.json
"""

import sys

from meta_rl.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
