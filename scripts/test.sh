#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite. Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
# The HTML page's tests run in headless Chromium; in CI a browser that cannot be installed
# fails the run, elsewhere those tests skip and say why.
if ! bash scripts/install-browser.sh; then
  case "${CI:-}" in
    ""|0|false|no) echo "no browser: the browser tests of the HTML page will skip" >&2 ;;
    *) echo "CI: Chromium and chromedriver are needed for the HTML page tests" >&2; exit 1 ;;
  esac
fi
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  # pytest's 5 means "no tests were collected": for this project that is a broken suite, not a pass.
  echo "pytest collected no tests: treating that as a failure" >&2
  exit 1
fi
exit "$status"
