#!/usr/bin/env python
"""Meta-train a policy: a thin wrapper over `meta-rl train` (same arguments).

    python scripts/train.py navigation-maml --run-dir runs/nav-maml
    python scripts/train.py navigation-metasgd outer.max_kl=0.02 --seed 3
"""

import sys

from meta_rl.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
