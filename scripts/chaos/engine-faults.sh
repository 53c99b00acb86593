#!/usr/bin/env bash
# The reference engine, with engine faults switched on per job for the chaos run. A prompt
# carrying `[fault:<oom|abort|hang>:<once|always>:<id>]` sets the engine's fault switch
# (REFENGINE_OOM_AT_STEP, REFENGINE_ABORT_AT_STEP, REFENGINE_HANG_AT_STEP) for that run;
# `once` faults only the first run of that id (a retry then succeeds), `always` every run.
# Each run leaves its pid under $CHAOS_RUN_DIR/engines, so the run can end engines whose
# worker was SIGKILLed (a hung one would otherwise wait forever). exec keeps the pid, so
# the worker's process-group kill reaches the engine itself.
set -u
mkdir -p "$CHAOS_RUN_DIR/engines" "$CHAOS_RUN_DIR/faults"
: > "$CHAOS_RUN_DIR/engines/$$"
if [[ "$*" =~ \[fault:(oom|abort|hang):(once|always):([a-z0-9]+)\] ]]; then
  kind="${BASH_REMATCH[1]}"
  mode="${BASH_REMATCH[2]}"
  id="${BASH_REMATCH[3]}"
  # mkdir is atomic: exactly one run of a `once` fault finds the directory missing.
  if [[ "$mode" == always ]] || mkdir "$CHAOS_RUN_DIR/faults/$id" 2>/dev/null; then
    case "$kind" in
      oom) export REFENGINE_OOM_AT_STEP=2 ;;
      abort) export REFENGINE_ABORT_AT_STEP=2 ;;
      hang) export REFENGINE_HANG_AT_STEP=2 ;;
    esac
  fi
fi
exec "$CHAOS_ENGINE_BIN" "$@"
