# Sourced by test.sh and run.sh: `install_locked NAME LOCK` makes .venv hold exactly what LOCK pins
# (hash-checked) plus waterz itself as an editable install, or stops with one sentence.
# A .venv that holds other versions than LOCK (left from before a lock change) is refused, not patched.

install_locked() {
  local name=$1 lock=$2
  if [ ! -x .venv/bin/python ]; then
    # a new venv holds only what venv itself put there (its pip and setuptools): the lock's install moves those
    "${PYTHON:-python3}" -m venv .venv
  elif ! .venv/bin/python scripts/check_lock.py "$lock" 2>.venv/lock-check; then
    echo "$name: $(cat .venv/lock-check)" >&2
    exit 2
  fi
  .venv/bin/python -m pip install -q --require-hashes -r "$lock"
  # waterz itself, without its dependencies (the lock has them) and built with the lock's setuptools
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
  if ! .venv/bin/python scripts/check_lock.py "$lock" --complete 2>.venv/lock-check; then
    echo "$name: $(cat .venv/lock-check)" >&2
    exit 2
  fi
}
