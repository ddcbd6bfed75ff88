#!/usr/bin/env bash
# Meta-World ML1 with MAML + LVC and with ProMP (docs/metaworld.md): train both side by side (one torch thread and
# one physics thread each: Meta-World steps in Python, one core per run), then score each on the benchmark's 50 test
# variations after 0 and 1 inner steps, 10 episodes per step.
#   bash research/reproduce_metaworld.sh            # reach-v3
#   bash research/reproduce_metaworld.sh push       # push-v3 (or pick-place)
# Runs go to runs/metaworld-ml1-TASK-{maml,promp} (resumed when rerun; about 18 hours each here), results to results/.
set -euo pipefail
cd "$(dirname "$0")/.."
task="${1:-reach}"
case "$task" in
  reach|push|pick-place) ;;
  *) echo "task must be reach, push or pick-place, got '$task'" >&2; exit 2 ;;
esac
machine=(torch_threads=1 sampler_threads=1)
for method in maml promp; do
  run="runs/metaworld-ml1-$task-$method"
  if [ -f "$run/checkpoint.pt" ]; then
    meta-rl train --resume "$run" "${machine[@]}" --no-progress &
  else
    meta-rl train "metaworld-ml1-$task-$method" "${machine[@]}" --run-dir "$run" --no-progress &
  fi
done
wait

mkdir -p results
for method in maml promp; do
  meta-rl evaluate "runs/metaworld-ml1-$task-$method" --episodes 10 --grad-steps 1 --no-progress \
    --json "results/metaworld-ml1-$task-$method.json"
done
