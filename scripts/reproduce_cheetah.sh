#!/usr/bin/env bash
# Reproduce the README's half-cheetah tables: train every method, evaluate on 40 held-out tasks, plot.
#   bash scripts/reproduce_cheetah.sh vel     # target velocity (default)
#   bash scripts/reproduce_cheetah.sh dir     # direction
# Extra arguments are config overrides for every training, e.g. outer.fvp_subsample=0.25 (what the README's runs
# used, to fit a run in under two hours on 2 cores). Runs go to runs/cheetah-FAMILY-METHOD (resumable: this script
# resumes them), results to results/. One training at a time: each uses every core.
set -euo pipefail
cd "$(dirname "$0")/.."
family="${1:-vel}"; shift || true

for method in maml metasgd pretrained oracle; do
  run="runs/cheetah-$family-$method"
  if [ -f "$run/checkpoint.pt" ]; then
    meta-rl train --resume "$run" --no-progress
  else
    meta-rl train "cheetah-$family-$method" checkpoint_every=5 "$@" --run-dir "$run" --no-progress
  fi
done

mkdir -p results
for method in maml metasgd pretrained; do
  meta-rl evaluate "runs/cheetah-$family-$method" --json "results/cheetah-$family-$method.json" --no-progress
done
meta-rl evaluate "cheetah-$family-maml" --random --json "results/cheetah-$family-random.json" --no-progress
meta-rl evaluate "runs/cheetah-$family-oracle" --grad-steps 0 --json "results/cheetah-$family-oracle.json" \
  --no-progress
meta-rl plot results/cheetah-"$family"-{maml,metasgd,pretrained,random,oracle}.json \
  -o "results/cheetah-$family-adaptation.png" --title "half-cheetah $family, 40 held-out tasks"
