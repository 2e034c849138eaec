#!/usr/bin/env bash
# Install headless Chromium and its chromedriver from the OS packages when they are missing:
# tests/test_html_page.py drives them through Selenium. Needs root (or sudo) and apt-get.
# Exits 0 when both are there afterwards, 1 when they could not be installed (the caller
# decides whether that fails the run: under CI=true scripts/test.sh says it does).
set -uo pipefail

have_browser() {
  { command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null; } \
    && command -v chromedriver >/dev/null
}

if have_browser; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install-browser: no apt-get here; install Chromium and chromedriver yourself to run the browser tests" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "install-browser: not root and no sudo; cannot install Chromium" >&2
    exit 1
  fi
fi
echo "install-browser: installing chromium and chromium-driver (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
if have_browser; then
  exit 0
fi
echo "install-browser: Chromium or chromedriver still missing after apt-get" >&2
exit 1
