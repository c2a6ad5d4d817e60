#!/usr/bin/env bash
# durable_crash_after: durable_crash.sh's kill points, with the host killed right after
# each of its store writes committed instead of just before it (e.g. an attempt's
# success recorded, its dependents not yet queued; the run's end recorded, the process
# not yet exited). Split out so each half has ctest's whole time limit.
DURABLE_KILL_MODES=after . "$(dirname "$0")/durable_crash.sh"
