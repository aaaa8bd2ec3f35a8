# gnntrack, the CTC submission bundle, as an image; the run scripts are its entry point.
#
#   containers/build.sh docker              CPU image gnntrack:cpu (docker, podman or buildah)
#   containers/build.sh docker --cuda       CUDA image gnntrack:cuda (torch's CUDA build)
#   containers/run.sh docker Fluo-N2DH-SIM+-01    reads ../Fluo-N2DH-SIM+/01, writes 01_RES
# or by hand, with the dataset mounted beside the bundle (/ctc/gnntrack):
#   docker run --rm --user "$(id -u):$(id -g)" \
#       -v "$PWD/../Fluo-N2DH-SIM+:/ctc/Fluo-N2DH-SIM+" gnntrack:cpu Fluo-N2DH-SIM+-01
#
# Build arguments:
#   BASE         any image with Python >= 3.11 and its venv module; no registry is assumed
#                reachable, so name one you have (python:3.11-slim-bookworm, or a local
#                Debian bookworm with python3-venv: containers/test_container.sh makes one)
#   TORCH_INDEX  where torch comes from: https://download.pytorch.org/whl/cpu (CPU, default),
#                https://download.pytorch.org/whl/cu126 (CUDA; run with --gpus all / --nv),
#                or empty to take it from pip's own configuration (PIP_* below)
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS, PIP_CERT
#                pip's settings for the build only (a mirror, local wheels, a CA bundle);
#                files they name must be mounted into the build (buildah/podman -v)
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_CERT

LABEL org.opencontainers.image.title="gnntrack" \
      org.opencontainers.image.description="GNN cell tracking: Cell Tracking Challenge submission bundle"

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/opt/numba-cache \
    MPLCONFIGDIR=/tmp/matplotlib

# The bundle lives at /ctc/gnntrack; datasets are mounted beside it at /ctc/<Dataset>.
WORKDIR /ctc/gnntrack

# Dependencies first, exactly as pinned in constraints.txt (a layer that survives code
# changes). torch comes first with TORCH_INDEX as an extra index: its build of the pinned
# version (2.13.0+cpu, 2.13.0+cu126) ranks above PyPI's, so the CPU image has no CUDA libraries.
COPY pyproject.toml constraints.txt ./
RUN python3 -c 'import sys; assert sys.version_info >= (3, 11), "gnntrack needs Python >= 3.11"' \
    && python3 -m venv "$VIRTUAL_ENV" \
    && if [ -n "$TORCH_INDEX" ]; then \
        pip install --no-cache-dir --extra-index-url "$TORCH_INDEX" -c constraints.txt torch; \
    fi \
    && python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -c constraints.txt -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The bundle: code (installed without further dependencies), models, run scripts, sample.
COPY README.md ./
COPY inference inference
COPY seg_code seg_code
COPY training training
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build ./*.egg-info \
    && gnntrack --version
COPY parameters parameters
COPY scripts scripts
COPY containers/entrypoint.sh containers/entrypoint.sh
COPY data/sample data/sample

COPY containers/warm_numba_cache.sh containers/warm_numba_cache.sh

# Numba's kernels (cell features, crops) are compiled once here, for every run to load
# (compiling costs each run ~5 s); the cache stays writable for any --user.
# Runs as an unprivileged user; `docker run --user "$(id -u):$(id -g)"` makes the result
# belong to you (the image writes nothing but the result, /tmp and new numba kernels).
RUN containers/warm_numba_cache.sh \
    && useradd --create-home --uid 1000 --user-group ctc
USER 1000:1000

ENTRYPOINT ["/ctc/gnntrack/containers/entrypoint.sh"]
CMD ["help"]
