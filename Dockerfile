# Podium's one image: every service runs from it (python -m gateway | auth | game | ranking,
# and python -m infra.migrate). Build from the repository root:
#   docker build -t podium:0.1.0 .
# k8s/README.md ("Images") says how to build for another platform and push.

# Both stages must use the same Python: the virtualenv built in the first is copied into the
# second and points at its interpreter.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# A compiler, for any dependency that has no wheel for the target platform. It stays in this
# stage; the final image has no build tools.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/podium
ENV PATH=/opt/podium/bin:$PATH
WORKDIR /src

# Dependencies before the source, so that a code change does not reinstall them. Only
# [project.dependencies]: the dev, local (embedded servers) and bench extras stay out.
# grpcio-tools is resolved together with them, as scripts/setup.sh does, so that it matches
# the installed grpcio and protobuf (a grpcio patch release may have no grpcio-tools twin);
# it is removed once the code is generated.
COPY pyproject.toml ./
RUN python -c "import tomllib; \
deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
print('\n'.join(deps))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt grpcio-tools

# The gRPC code, generated from proto/ as scripts/setup.sh does, into site-packages.
COPY proto ./proto
RUN mkdir /tmp/gen \
    && cd proto \
    && python -m grpc_tools.protoc -I . \
        --python_out=/tmp/gen --pyi_out=/tmp/gen --grpc_python_out=/tmp/gen \
        $(find podium -name '*.proto' | sort) \
    && pip uninstall -y grpcio-tools \
    && site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
    && cp -r /tmp/gen/podium "$site/podium" \
    && python -m compileall -q "$site/podium"

# Podium itself, as a regular (not editable) install: its packages and their data files
# (migrations, boards.toml, the gateway's page and OpenAPI file) land in site-packages.
COPY auth ./auth
COPY game ./game
COPY gateway ./gateway
COPY infra ./infra
COPY ranking ./ranking
RUN pip install --no-deps . \
    && pip uninstall -y pip setuptools

FROM ${PYTHON_IMAGE}
# The uid the pods run as (runAsUser: 1000); a passwd entry so that libraries asking for the
# user's name get an answer.
RUN useradd --uid 1000 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin podium
COPY --from=build /opt/podium /opt/podium
# The root file system is read-only in the pods: byte code is compiled at build time, and
# nothing may try to write it next to the sources.
ENV PATH=/opt/podium/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 1000:1000
WORKDIR /opt/podium
# Each Deployment names its own service; the gateway is the default for a quick `docker run`.
CMD ["python", "-m", "gateway"]
