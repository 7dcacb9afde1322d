# beep-signal with Caddy on 1837, built by the Makefile's own targets:
# `make deps` installs what building needs, `make install` the binary.
FROM debian:12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends make \
	&& rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make deps && make clean all WERROR=0 && \
	make install DESTDIR=/out PREFIX=/usr

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
	libfcgi0ldbl libjansson4 libjwt0 caddy && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/bin/beep-signal /usr/bin/beep-signal
WORKDIR /opt/beep-signal
COPY Caddyfile scripts/run.sh ./
COPY web ./web
ENV PORT=1837 BEEP_BIN=/usr/bin/beep-signal BEEP_RUN_DIR=/run/beep-signal
EXPOSE 1837
STOPSIGNAL SIGTERM
CMD ["sh", "run.sh"]
