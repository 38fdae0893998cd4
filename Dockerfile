# Photon in a container: the README's install command, then the server on every interface.
#
#   docker build -t photon .                       # add --build-arg EXTRAS=amqp,redis for drivers
#   docker run -p 3000:3000 -v photon-data:/data photon
#
# The store (photon.db) and photon.properties live in /data, the working directory.
FROM python:3.11-slim

ARG EXTRAS=""
WORKDIR /opt/photon
COPY . .
RUN python3 -m venv .venv && .venv/bin/pip install -e . \
    && if [ -n "$EXTRAS" ]; then .venv/bin/pip install -e ".[$EXTRAS]"; fi \
    && rm -rf /root/.cache/pip

WORKDIR /data
VOLUME /data
ENV PHOTON_REST_HOST=0.0.0.0 \
    PHOTON_PROJECTIONS_PATH=/opt/photon/projections
EXPOSE 3000 8375 8376
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s \
    CMD ["/opt/photon/.venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/health/ready', timeout=4)"]
ENTRYPOINT ["/opt/photon/.venv/bin/photon"]
