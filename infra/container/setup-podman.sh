#!/bin/sh
# make tools: podman and runc, which infra/image's test runs every image
# with. Installs them with apt-get when they are missing and this is root on
# a Debian-like system; otherwise says what to install. As root, writes the
# containers.conf this machine's sandbox needs when there is none.
set -e
if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "tools: installing podman and runc with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y --no-install-recommends podman runc >/dev/null ||
			{ apt-get update >/dev/null && apt-get install -y --no-install-recommends podman runc >/dev/null; }
	else
		echo "tools: podman and runc not found: install them (e.g. apt-get install podman runc) so make test runs the images (infra/image); see README.md" >&2
		exit 0
	fi
fi
conf=/etc/containers/containers.conf
if [ "$(id -u)" = 0 ] && [ ! -e "$conf" ]; then
	# Sandboxes that refuse setrlimit: podman must not set its default ulimits.
	mkdir -p /etc/containers
	printf '[containers]\ndefault_ulimits = []\n' >"$conf"
	echo "tools: wrote $conf (default_ulimits = [])"
fi
