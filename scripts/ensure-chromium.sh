#!/usr/bin/env bash
# The report's browser test needs headless Chromium and its driver (Debian's packages).
# Install them where missing and we may (root with apt-get); otherwise say how, and the
# browser test skips with the same advice.
set -u
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium and chromium-driver for the report's browser test"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq chromium chromium-driver >/dev/null \
        || echo "could not install chromium; the browser test will be skipped"
else
    echo "note: install chromium and chromium-driver (e.g. sudo apt-get install chromium chromium-driver)"
    echo "      to run the report's browser test; it is skipped without them"
fi
exit 0
