# objsync as a small container: wheels are built in a throwaway stage, so no compiler reaches the final image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY objsync ./objsync
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 50000 --gid 0 objsync
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels objsync && rm -rf /wheels
USER 50000
# Same UID as Airflow's images (50000, group 0), so files in a shared volume are readable by Airflow.
# The daemon's /health and /metrics (--status-addr, :8087 by default).
EXPOSE 8087
ENTRYPOINT ["objsync"]
CMD ["--help"]
