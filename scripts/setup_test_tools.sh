#!/usr/bin/env bash
# Install what the tests need beyond .venv (run by scripts/test.sh), where this machine allows:
#   chromium                  the report opened in a real (headless) browser   system, apt
#   imageio-ffmpeg            the MP4 movie (the `mp4` extra, part of `dev`)   .venv, pip
#   Snakemake 9 + SLURM plugin  the workflow tests, in a venv of its own:    .venv-snakemake, pip
# and with --full (what CI runs) also:
#   buildah podman debootstrap  the image build (containers/test_container.sh)  system, apt
#   slurm-wlm munge             a one-node SLURM cluster (tests/test_slurm.py)   system, apt
# System packages are installed with apt only when running as root; otherwise each missing
# one is named with the command that installs it. Idempotent and cheap when all is there:
# nothing is downloaded then.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
full=0
[[ "${1:-}" == "--full" ]] && full=1
python="${PYTHON:-python3}"

say() { echo "[test tools] $*" >&2; }

# --- system packages: command that shows it is there -> Debian package ---------------------
declare -A wanted=([chromium]=chromium)
if ((full)); then
    wanted+=([buildah]=buildah [podman]=podman [debootstrap]=debootstrap)
    wanted+=([slurmctld]=slurm-wlm [munged]=munge)
fi
missing=()
for command in "${!wanted[@]}"; do
    if [[ "$command" == chromium ]]; then
        command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
    elif ! command -v "$command" >/dev/null && [[ ! -x "/usr/sbin/$command" ]]; then
        missing+=("${wanted[$command]}")
    fi
done
if ((${#missing[@]})); then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        say "installing ${missing[*]} (apt)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        say "missing system packages: ${missing[*]}; the tests that need them will fail."
        say "install them as root: apt-get update && apt-get install ${missing[*]}"
    fi
fi

# --- imageio-ffmpeg in .venv: comes with `./scripts/setup.sh --dev` (the mp4 extra) --------
if ! .venv/bin/python -c "import imageio_ffmpeg" 2>/dev/null; then
    say "installing the mp4 extra into .venv"
    .venv/bin/python -m pip install -qq --disable-pip-version-check -c constraints.txt -e ".[dev,mp4]"
fi

# --- Snakemake in its own venv (its dependencies must not move .venv's pins) ----------------
snakemake_venv=.venv-snakemake
requirements=("snakemake>=9,<10" "snakemake-executor-plugin-slurm>=1")
stamp="$snakemake_venv/.gnntrack-installed"
if [[ ! -x "$snakemake_venv/bin/snakemake" || "$(cat "$stamp" 2>/dev/null)" != "${requirements[*]}" ]]; then
    say "installing Snakemake 9 and its SLURM executor plugin into $snakemake_venv"
    [[ -x "$snakemake_venv/bin/python" ]] || "$python" -m venv "$snakemake_venv"
    "$snakemake_venv/bin/python" -m pip install -qq --disable-pip-version-check "${requirements[@]}"
    echo "${requirements[*]}" >"$stamp"
fi
