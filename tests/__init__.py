"""waterz tests (a regular package, so that a `tests` package some wheel installs, such as
Ultralytics 8.3.253, cannot shadow it)."""
