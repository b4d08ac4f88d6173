#!/usr/bin/env bash
# Make a deployable git repository of the example service: copies examples/hello into DIR (which must
# not exist yet, or be empty), makes it a git repository with one commit, and prints its path and sha.
#
#   examples/make-example-repo.sh /tmp/hello
#   platform deploy --source /tmp/hello --ref HEAD
#
# (This repository cannot hold a nested .git, so the example lives here as plain files.)
set -euo pipefail

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
target=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
example="$here/hello"

if [ -e "$target" ] && [ -n "$(ls -A "$target")" ]; then
  echo "error: $target exists and is not empty" >&2
  exit 1
fi
mkdir -p "$target"
# Copy the files, not caches.
(cd "$example" && tar --exclude='__pycache__' --exclude='*.pyc' -cf - .) | (cd "$target" && tar -xf -)

cd "$target"
git -c init.defaultBranch=main init --quiet
git add --all
git -c user.name="Micro Example" -c user.email="example@localhost" -c commit.gpgsign=false \
  commit --quiet -m "hello: the example service"
echo "$(pwd) $(git rev-parse HEAD)"
