# Suites of the later folders. Each line is added by the issue that creates the folder's tests.
