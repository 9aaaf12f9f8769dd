# The InfluxDB image: influxd 1.x on port 8086, data in the volume /var/lib/influxdb.
#
# Built by harness/runtime/containers/images.py (`cutover images`) from a staged context
# holding influxd.conf, made from harness/runtime/influxd.py's CONFIG_TEMPLATE (the process
# runtime's choices: no _internal monitor store, no query or HTTP logs) with HTTP bound to
# 0.0.0.0 so other containers reach it through its network alias.
# BASE_IMAGE is influxdb:1.8 where a registry answers, else the Debian rootfs base, which
# carries Debian's influxdb package (1.6.7).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

COPY influxd.conf /etc/cutover/influxd.conf
# Fail the build, not the first run, on a base without influxd.
RUN command -v influxd >/dev/null && mkdir -p /var/lib/influxdb

VOLUME /var/lib/influxdb
EXPOSE 8086
# Runs as root, as the official image does: a data directory bind-mounted from the host then
# needs no chown. ENTRYPOINT is reset because the official image's would wrap the command.
ENTRYPOINT []
CMD ["influxd", "run", "-config", "/etc/cutover/influxd.conf"]
