#!/usr/bin/env bash
# Half-cheetah at the paper's control rate with ProMP and with MAML + LVC, against docs/reproduce-half-cheetah.md's
# MAML-TRPO runs (the same batch, so the same number of environment steps per iteration): train, then score as the
# paper was (its 40 test tasks, rllab's start state) with three evaluation seeds.
#   bash research/reproduce_cheetah_estimators.sh dir     # 200 iterations, MAML + LVC with max KL 0.02, exact Fisher
#   bash research/reproduce_cheetah_estimators.sh vel     # 500 iterations, MAML + LVC with the quarter Fisher
# Runs go to runs/cheetah-FAMILY-{promp,lvc}-paper (resumed when rerun), results to results/. The two trainings run
# side by side with one torch thread and one physics thread each (2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
family="${1:-dir}"
case "$family" in
  dir) iterations=200 lvc_overrides=(outer.max_kl=0.02) ;;  # the authors' direction setting (docs: max KL 0.02)
  vel) iterations=500 lvc_overrides=(outer.fvp_subsample=0.25) ;;
  *) echo "family must be dir or vel, got '$family'" >&2; exit 2 ;;
esac
machine=(torch_threads=1 sampler_threads=1)

train() {  # train RUN PRESET [overrides...]: start or resume in the background
  local run="$1" preset="$2"; shift 2
  if [ -f "$run/checkpoint.pt" ]; then
    meta-rl train --resume "$run" "iterations=$iterations" "${machine[@]}" --no-progress &
  else
    meta-rl train "$preset" "iterations=$iterations" checkpoint_every=5 snapshot_every=50 "${machine[@]}" "$@" \
      --run-dir "$run" --no-progress &
  fi
}
train "runs/cheetah-$family-promp-paper" "cheetah-$family-promp-paper"
train "runs/cheetah-$family-lvc-paper" "cheetah-$family-maml-paper" inner.estimator=lvc "${lvc_overrides[@]}"
wait

mkdir -p results
for method in promp lvc; do
  for seed in 1000003 1 2; do
    meta-rl evaluate "runs/cheetah-$family-$method-paper" --task-file "paper:cheetah-$family" \
      --env-kwarg reset_noise=rllab --seed "$seed" --no-progress \
      --json "results/cheetah-$family-$method-paper-protocol-seed$seed.json"
  done
done
meta-rl curves "runs/cheetah-$family-promp-paper" "runs/cheetah-$family-lvc-paper" --labels ProMP "MAML, lvc" \
  -o "results/cheetah-$family-estimators-curves.png" --title "half-cheetah $family (paper rate): ProMP and MAML + LVC"
