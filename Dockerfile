# beep-signal with Caddy, built by the Makefile's own targets: `make deps`
# installs what building needs, `make install` the binary, the man page, the
# sample configuration and the systemd units.
#
#   docker build -t beep-signal .
#   docker run -p 1837:1837 -e BEEP_KEEPALIVE=10 beep-signal
#   docker run -p 80:80 -p 443:443 -v beep-data:/var/lib/beep-signal \
#       -e SITE_ADDRESS=signal.example.com beep-signal
#
# Every BEEP_* variable reaches the backend and SITE_ADDRESS, CADDY_BIND,
# OPS_BIND and OPS_PORT reach Caddy (see the Caddyfile).  It runs as the
# unprivileged user beep; Caddy may still bind 80 and 443 for automatic TLS
# (cap_net_bind_service on its binary).  HEALTHCHECK asks /healthz on the
# loopback operations site.  SIGTERM (docker stop) stops both processes
# cleanly: streams get their retry: field, the exit status is 0.
FROM debian:12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends make \
	&& rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make deps && make clean all WERROR=0 && \
	make install DESTDIR=/out PREFIX=/usr

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
	libfcgi0ldbl libjansson4 libjwt0 libhiredis0.14 caddy curl libcap2-bin \
	&& setcap cap_net_bind_service=+ep /usr/bin/caddy \
	&& apt-get purge -y libcap2-bin && apt-get autoremove -y \
	&& rm -rf /var/lib/apt/lists/* \
	&& useradd --system --uid 10001 --user-group \
		--home-dir /var/lib/beep-signal --create-home beep \
	&& install -d -o beep -g beep -m 0750 /run/beep-signal
COPY --from=build /out/usr/ /usr/
WORKDIR /opt/beep-signal
COPY Caddyfile scripts/run.sh scripts/healthcheck.sh ./
COPY web ./web
# The Caddyfile imports the call page's rules from where make install put
# them (it has no conf/ beside it here).
ENV PORT=1837 BEEP_BIN=/usr/bin/beep-signal BEEP_RUN_DIR=/run/beep-signal \
	BEEP_CADDY_WEB=/usr/share/beep-signal/caddy-web.conf \
	HOME=/var/lib/beep-signal XDG_DATA_HOME=/var/lib/beep-signal/data \
	XDG_CONFIG_HOME=/var/lib/beep-signal/config OPS_PORT=9180
USER beep
VOLUME ["/var/lib/beep-signal"]
EXPOSE 1837
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
	CMD ["sh", "healthcheck.sh"]
CMD ["sh", "run.sh"]
