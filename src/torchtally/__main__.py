"""``python -m torchtally MODEL [options]``: the same as the ``torchtally`` command."""

from torchtally.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
