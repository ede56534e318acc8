# coincast image for the scaled-out deployment (docker-compose.yml). CPU-only torch.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends default-jre-headless && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir ".[batch,ml,ingest,postgres,kafka]"
ENV COINCAST_DATA_DIR=/data COINCAST_API__HOST=0.0.0.0
VOLUME /data
ENTRYPOINT ["coincast"]
CMD ["up"]
