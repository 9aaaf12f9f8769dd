# The pipeline image: every service of pipeline/ and the simulators in one image; the command
# picks what runs (`python -m pipeline.storage`, `python -m simulators.weather --host 0.0.0.0`).
#
# Built by harness/runtime/containers/images.py (`cutover images`) from a staged context:
#   wheels/            the project's runtime dependencies, downloaded on the host: pip in a
#                      container build cannot be assumed to reach a package index
#   requirements.txt   [project].dependencies of pyproject.toml
#   app/               pipeline/, simulators/ and pyproject.toml
# BASE_IMAGE is python:3.11-slim-bookworm where a registry answers, else a Debian bookworm
# rootfs made with debootstrap; both have a CPython 3.11 the wheels were chosen for.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# Dependencies before sources: editing the pipeline rebuilds only the last layers.
COPY requirements.txt /tmp/cutover/requirements.txt
COPY wheels/ /tmp/cutover/wheels/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --no-cache-dir --disable-pip-version-check \
        --find-links /tmp/cutover/wheels -r /tmp/cutover/requirements.txt \
 && rm -rf /tmp/cutover

# libfaketime for clock_skew (harness/runtime/faketime.py), linked at one path whatever the
# architecture's multiarch directory, with its offset file at true time. The debootstrap base
# carries the package (rootfs.PACKAGES); python:3.11-slim does not, and where that image could
# be pulled Debian's mirror answers too.
RUN lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n1); \
    if [ -z "$lib" ]; then \
        apt-get update -qq && apt-get install -y -qq --no-install-recommends libfaketime \
        && rm -rf /var/lib/apt/lists/* && lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 | head -n1); \
    fi; \
    ln -sf "$lib" /usr/local/lib/libfaketime.so.1 && echo "+0" > /etc/cutover-clock

COPY app/ /opt/cutover/
# Bytecode compiled now, so a container (re)started by a fault step is up sooner.
RUN /opt/venv/bin/python -m compileall -q /opt/cutover

# CUTOVER_HOST: inside a container a service must listen on every interface to be reached
# through the network alias; the runtime still passes ports and URLs.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/cutover \
    PYTHONUNBUFFERED=1 \
    CUTOVER_HOST=0.0.0.0
# The services' relative data dirs (durable queues) land here unless CUTOVER_DATA_DIR says.
WORKDIR /var/lib/cutover
CMD ["python", "-c", "raise SystemExit('choose a service: python -m pipeline.<legacy|ingestion|\
enrichment|storage|admin>, or python -m simulators.weather')"]
