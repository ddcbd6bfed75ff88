#!/usr/bin/env bash
# The checks for a CUDA machine in one run: the CUDA tests, then the update benchmark and the meta-iteration
# benchmark (2D navigation, half-cheetah velocity) with adaptation and updates on the GPU, sampling on the CPU.
# Each step has its own time limit and log (in OUT_DIR), so one that fails or hangs does not hide the others.
#
#   bash scripts/gpu_check.sh [OUT_DIR]      # default OUT_DIR: $OUT, else /tmp/meta_rl_gpu_check
#   bash scripts/gpu_check.sh --wheels       # on a networked machine: fetch the dependencies' wheels into .whl/
#
# For a GPU machine that has PyTorch with CUDA but neither the network nor gymnasium and MuJoCo (docs/speed.md):
# run --wheels where pip works, bring .whl/ along, and the check installs them to /tmp/site before it starts.
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}

if [ "${1:-}" = "--wheels" ]; then  # the device's Python is 3.12; the versions are the ones pyproject.toml pins
    exec "$python" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
        gymnasium==1.4.0 farama-notifications==0.0.6 mujoco==3.3.0 glfw==2.11.0 pyopengl==3.1.10
fi

out=${1:-${OUT:-/tmp/meta_rl_gpu_check}}
mkdir -p "$out" /tmp/site
if [ -d .whl ]; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || exit 1
fi
ln -sfn "$PWD/envs" /tmp/site/meta_rl_envs  # the project itself, uninstalled: meta_rl from here, envs as named
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 MUJOCO_GL=${MUJOCO_GL:-disable}  # no rendering: no OpenGL library needed

failed=0
step() {  # step NAME SECONDS COMMAND...: run it under a time limit, log to OUT_DIR/NAME.log, report its exit code
    local name=$1 limit=$2
    shift 2
    echo "== $name: $*"
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
    local code=${PIPESTATUS[0]}
    echo "== $name: exit $code after ${SECONDS}s in all"
    [ "$code" = 0 ] || failed=1
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$out/gpu.log"
"$python" -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'; print('torch', \
    torch.__version__, torch.cuda.get_device_name())" 2>&1 | tee -a "$out/gpu.log"
[ "${PIPESTATUS[0]}" = 0 ] || exit 1
step cuda-tests 150 "$python" -m pytest -q -p no:cacheprovider -rfEs -k cuda \
    tests/test_meta_learner.py tests/test_trainer.py tests/test_benchmark_iteration.py tests/test_benchmark_update.py
step benchmark-update 180 "$python" scripts/benchmark_update.py --device cuda
step iteration-navigation 100 "$python" scripts/benchmark_iteration.py navigation-maml --device cuda
step iteration-cheetah 120 "$python" scripts/benchmark_iteration.py cheetah-vel-maml --device cuda --iterations 2 \
    --reference-iterations 1
exit $failed
