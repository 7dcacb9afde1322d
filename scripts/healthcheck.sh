#!/bin/sh
# The container's HEALTHCHECK (see the Dockerfile): GET /healthz through
# Caddy's operations site (OPS_BIND:OPS_PORT, loopback by default), so it
# works whatever SITE_ADDRESS is (a domain with TLS, another port).  It is a
# liveness check: a node at BEEP_MAX_STREAMS is healthy; balancers should
# ask /readyz.  Exit 0 when healthy, non-zero otherwise.
set -eu
host=${OPS_BIND:-127.0.0.1}
case $host in
0.0.0.0 | "[::]" | "::") host=127.0.0.1 ;;
*:*) host="[$host]" ;;
esac
exec curl -fsS -o /dev/null --max-time 2 "http://$host:${OPS_PORT:-9180}/healthz"
