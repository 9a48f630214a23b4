# authd, center role: the cross-institution state on PostgreSQL, the key-encryption key in a
# network HSM (its PKCS#11 module mounted in) or, for trials, SoftHSM2.
#
#   docker build -t authd-center .
#   docker run -v /etc/authd:/etc/authd:ro -v authd-data:/var/lib/authd \
#              -p 50051:50051 authd-center
#
# Configuration (/etc/authd/authd.toml, see deploy/authd-center.toml) and data
# (/var/lib/authd) are volumes; the process runs as the unprivileged user authd. The health
# check asks the gRPC health service with a monitoring client certificate mounted at
# /etc/authd/tls/monitor.{pem,key}.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends softhsm2 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system authd \
 && useradd --system --gid authd --home-dir /var/lib/authd --shell /usr/sbin/nologin authd \
 && install -d -o authd -g authd -m 0700 /var/lib/authd

WORKDIR /opt/authd
COPY pyproject.toml README.md ./
COPY authd ./authd
COPY devices ./devices
COPY drivers ./drivers
COPY simulators ./simulators
RUN pip install --no-cache-dir . && rm -rf /root/.cache

USER authd
VOLUME ["/var/lib/authd"]
EXPOSE 50051
ENV AUTHD_DATA_DIR=/var/lib/authd AUTHD_ROLES='["center"]' AUTHD_SIMULATORS=false
HEALTHCHECK --interval=15s --timeout=6s --start-period=20s --retries=3 \
  CMD ["authd", "health", "--address", "127.0.0.1:50051", "--ca", "/etc/authd/tls/ca.pem", \
       "--cert", "/etc/authd/tls/monitor.pem", "--key", "/etc/authd/tls/monitor.key"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["authd", "serve", "--config", "/etc/authd/authd.toml"]
