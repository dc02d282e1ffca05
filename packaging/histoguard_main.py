"""Entry point of the frozen app (PyInstaller): the same ``histoguard`` command as a pip install."""

import multiprocessing
import sys

from desktop_app.launcher import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen app's worker processes re-enter here on Windows and macOS
    sys.exit(main())
