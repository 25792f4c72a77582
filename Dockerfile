# The kubestream image: the operator, the driver and the executors all run it,
# and applications build FROM it (see "Container image" in README.md).
#
#   e2e/cluster/image build kubestream/kubestream:0.1.0 .    # the local cluster
#   docker build -t kubestream/kubestream:0.1.0 .             # elsewhere
#
# The base is Debian bookworm's Python 3.11: the local cluster builds it with
# hack/rootfs-base-image.sh; elsewhere tag python:3.11-slim-bookworm so.
# Pods run it with a read-only root filesystem: nothing here is written at run
# time; /tmp and /checkpoint are volumes.

FROM kubestream/base-python:3.11-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/kubestream/venv
WORKDIR /src
# Dependencies first, pinned by constraints.txt, in a layer of their own that
# only a change of pyproject.toml or constraints.txt rebuilds.
COPY pyproject.toml constraints.txt ./
RUN python3 -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' > requirements.txt \
    && /opt/kubestream/venv/bin/pip install -c constraints.txt -r requirements.txt
COPY README.md ./
COPY runtime runtime
COPY operator operator
RUN /opt/kubestream/venv/bin/pip install --no-deps . \
    && /opt/kubestream/venv/bin/pip check

FROM kubestream/base-python:3.11-bookworm
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="kubestream" \
      org.opencontainers.image.description="Spark-Streaming-style micro-batch stream processing in Python, on Kubernetes" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /opt/kubestream/venv /opt/kubestream/venv
# The examples, so examples/wordcount-job.yaml runs on this image as it is.
COPY examples/*.py /opt/kubestream/examples/
# uid/gid 10001, the user the operator's pod security context asks for.
# /checkpoint and /app exist for `docker run` without volumes; in a pod
# /checkpoint is the job's claim and /tmp an emptyDir.
RUN groupadd --gid 10001 kubestream \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin kubestream \
    && mkdir -p /checkpoint /app \
    && chown 10001:10001 /checkpoint
ENV PATH=/opt/kubestream/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app
USER 10001:10001
ENTRYPOINT ["kubestream"]
CMD ["--help"]
