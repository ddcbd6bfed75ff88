#!/usr/bin/env bash
# Reproduce the README's 2D-navigation tables: train every method, evaluate on 40 held-out tasks, plot.
#   bash research/reproduce_navigation.sh            # the issue-default setting (navigation-*)
#   bash research/reproduce_navigation.sh paper      # the MAML paper's own setting (navigation-*-paper)
# Runs go to runs/full-PRESET (resumable with `meta-rl train --resume runs/full-PRESET`; each keeps a
# checkpoint-ITERATION.pt every 100 iterations, so an earlier iteration can be evaluated), results to results/.
# Two trainings run at a time with one torch thread each (2 cores). With `paper`, each method is also scored as the
# paper measured (its 40 test goals, 40 episodes per step) into results/navigation-METHOD-paper-protocol.json.
set -euo pipefail
cd "$(dirname "$0")/.."
suffix=""; [ "${1:-}" = "paper" ] && suffix="-paper"

train_pair() {
  for preset in "$@"; do
    if [ ! -f "runs/full-$preset/checkpoint.pt" ]; then
      meta-rl train "$preset" torch_threads=1 snapshot_every=100 --run-dir "runs/full-$preset" --no-progress &
    else
      meta-rl train --resume "runs/full-$preset" --no-progress &
    fi
  done
  wait
}
train_pair "navigation-maml$suffix" "navigation-metasgd$suffix"
train_pair "navigation-pretrained$suffix" "navigation-oracle$suffix"

# score_all TAG TITLE [evaluate options...]: evaluate every method (and the random policy) with these options into
# results/navigation-METHOD[-paper]TAG.json, and plot them (with the array references as plot --reference arguments);
# the plain pass also draws each method's trajectories.
score_all() {
  local tag="$1" plot_title="$2"; shift 2
  for method in maml metasgd pretrained; do
    local pictures=()
    [ -z "$tag" ] && pictures=(--trajectories "results/navigation-$method$suffix-trajectories.png")
    meta-rl evaluate "runs/full-navigation-$method$suffix" "$@" "${pictures[@]}" --no-progress \
      --json "results/navigation-$method$suffix$tag.json"
  done
  meta-rl evaluate "navigation-maml$suffix" --random "$@" --no-progress --json "results/navigation-random$suffix$tag.json"
  meta-rl evaluate "runs/full-navigation-oracle$suffix" --grad-steps 0 "$@" --no-progress \
    --json "results/navigation-oracle$suffix$tag.json"
  meta-rl plot results/navigation-{maml,metasgd,pretrained,random,oracle}"$suffix$tag".json \
    -o "results/navigation-adaptation$suffix$tag.png" --title "$plot_title" "${references[@]}"
}
references=()  # plot --reference arguments, when set

mkdir -p results
score_all "" "2D navigation${suffix:+ (paper setting)}, 40 held-out tasks"

# In the paper's setting, also score as the paper's numbers were measured: on the authors' 40 test goals
# (paper:navigation) with 40 episodes per step (their test script sampled 4000 steps of
# horizon 100 per step), with the paper's numbers drawn beside ours. These are the rows to set beside the paper's.
if [ -n "$suffix" ]; then
  references=(--reference "MAML paper=-40.41,-11.68,-3.33,-3.23" --reference "pretrained, MAML paper=-40.81,-19.73,-11.72,-8.47"
              --reference "oracle, MAML paper=-2.29")
  score_all -protocol "2D navigation (paper setting), the paper's 40 test goals, 40 episodes per step" \
    --task-file paper:navigation --episodes 40
fi
