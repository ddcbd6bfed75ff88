#!/usr/bin/env bash
# Reproduce docs/estimators.md's 2D-navigation comparison of the inner estimators and ProMP: train each on the
# issue-default setting (navigation-maml's batch, 500 iterations, seed 0), score it on 40 held-out tasks after 0-3
# steps, plot the training curves and the adaptation curves.
#   bash research/reproduce_estimators.sh
# Runs go to runs/nav-NAME (resumable: rerunning the script resumes unfinished runs), results to results/.
# Two trainings run at a time with one torch thread each (2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A config=(
  [maml]="navigation-maml inner.estimator=maml"
  [lvc]="navigation-maml inner.estimator=lvc"
  [dice]="navigation-maml inner.estimator=dice"
  [promp]="navigation-promp"
  [metasgd-lvc]="navigation-metasgd inner.estimator=lvc"
  [metasgd-lvc-3step]="navigation-metasgd inner.num_steps=3 outer.fvp=gauss_newton"
)

train() {  # train NAME: start or resume runs/nav-NAME in the background
  local name="$1" run="runs/nav-$1"
  if [ -f "$run/checkpoint.pt" ]; then
    meta-rl train --resume "$run" --no-progress &
  else
    # shellcheck disable=SC2086  # the config is a preset and overrides, split on purpose
    meta-rl train ${config[$name]} torch_threads=1 snapshot_every=100 --run-dir "$run" --no-progress &
  fi
}
train lvc; train promp; wait
train dice; train maml; wait
train metasgd-lvc; train metasgd-lvc-3step; wait

mkdir -p results
for name in maml lvc dice promp metasgd-lvc metasgd-lvc-3step; do
  meta-rl evaluate "runs/nav-$name" --no-progress --json "results/navigation-estimator-$name.json"
done
meta-rl curves runs/nav-{maml,lvc,dice,promp,metasgd-lvc} --labels "MAML, maml" "MAML, lvc" "MAML, dice" ProMP \
  "Meta-SGD, lvc" -o results/navigation-estimators-curves.png --title "2D navigation: inner estimators and ProMP"
# (Meta-SGD left out: trained for one step, its learned step sizes diverge when reused for steps 2 and 3)
meta-rl plot results/navigation-estimator-{maml,lvc,dice,promp}.json --labels "MAML, maml" "MAML, lvc" "MAML, dice" \
  ProMP -o results/navigation-estimators-adaptation.png --title "2D navigation, 40 held-out tasks"

# ProMP continued to 1000 iterations (a copy of its run, so the 500-iteration one stays as it is)
[ -d runs/nav-promp-1000 ] || cp -r runs/nav-promp runs/nav-promp-1000
meta-rl train --resume runs/nav-promp-1000 iterations=1000 --no-progress
meta-rl evaluate runs/nav-promp-1000 --no-progress --json results/navigation-estimator-promp-1000.json
