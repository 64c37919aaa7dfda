# hashguard service image. Multi-stage: compilers only in the build stage; the runtime runs as a
# non-root user. The server never decodes media, so neither swig nor ffmpeg is in the runtime
# (they are needed only by the client's video hashing, `pip install hashguard[video]`).
FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY hashing ./hashing
COPY api ./api
COPY partners ./partners
COPY store ./store
COPY txlog ./txlog
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[server]'

FROM python:3.11-slim-bookworm AS runtime
RUN useradd --system --uid 10001 --home-dir /var/lib/hashguard --create-home hashguard
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY migrations /app/migrations
COPY web /app/web
ENV HASHGUARD_WEB_DIR=/app/web
ENV HASHGUARD_MIGRATIONS=/app/migrations
# numba caches the match index's compiled loop here (site-packages is not the user's to write)
ENV NUMBA_CACHE_DIR=/var/lib/hashguard/.numba-cache
USER hashguard
WORKDIR /var/lib/hashguard
# The data folder: the SQLite default database and, unless they come from the environment, the
# server secret and signing keys. A volume, so none of them vanishes with the container.
ENV HASHGUARD_DATA_DIR=/var/lib/hashguard
VOLUME ["/var/lib/hashguard"]
ENV HASHGUARD_DATABASE_URL=sqlite:////var/lib/hashguard/hashguard.db
EXPOSE 8000
# Ready = the database answers and takes writes and the match index is built (/readyz); the
# runtime has no curl, so Python asks. A long start-up build is covered by --start-period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
CMD ["hashguard", "serve", "--host", "0.0.0.0", "--port", "8000"]
