"""The main window's pages, one widget per file: start, data, train, stress test, results, diagnose."""
