#!/usr/bin/env bash
# Reproduce the README's 2D-navigation tables: train every method, evaluate on 40 held-out tasks, plot.
#   bash scripts/reproduce_navigation.sh            # the issue-default setting (navigation-*)
#   bash scripts/reproduce_navigation.sh paper      # the MAML paper's own setting (navigation-*-paper)
# Runs go to runs/full-PRESET (resumable with `meta-rl train --resume runs/full-PRESET`), results to results/.
# Two trainings run at a time with one torch thread each (2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
suffix=""; [ "${1:-}" = "paper" ] && suffix="-paper"

train_pair() {
  for preset in "$@"; do
    if [ ! -f "runs/full-$preset/checkpoint.pt" ]; then
      meta-rl train "$preset" torch_threads=1 --run-dir "runs/full-$preset" --no-progress &
    else
      meta-rl train --resume "runs/full-$preset" --no-progress &
    fi
  done
  wait
}
train_pair "navigation-maml$suffix" "navigation-metasgd$suffix"
train_pair "navigation-pretrained$suffix" "navigation-oracle$suffix"

mkdir -p results
for method in maml metasgd pretrained; do
  meta-rl evaluate "runs/full-navigation-$method$suffix" --json "results/navigation-$method$suffix.json" \
    --trajectories "results/navigation-$method$suffix-trajectories.png" --no-progress
done
meta-rl evaluate "navigation-maml$suffix" --random --json "results/navigation-random$suffix.json" --no-progress
meta-rl evaluate "runs/full-navigation-oracle$suffix" --grad-steps 0 --json "results/navigation-oracle$suffix.json" \
  --no-progress
meta-rl plot results/navigation-{maml,metasgd,pretrained,random,oracle}"$suffix".json \
  -o "results/navigation-adaptation$suffix.png" --title "2D navigation${suffix:+ (paper setting)}, 40 held-out tasks"
